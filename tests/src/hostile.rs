//! The hostile-input corpus, generated (no bomb is checked in): installers, Oracle Homes,
//! patches, cache verbs, image references and campaign files built to escape the work
//! directory, exhaust CPU, memory or disk, or hang a reader. Each case is the files it needs
//! and the `patchfarm` command lines that feed them in; `tests/tests/e2e/hostile.rs` runs them.

use crate::weblogic::{self, Act, JAR, WLS_VERSION};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One hostile input and how to feed it to patchfarm.
pub struct Case {
    pub name: String,
    /// Commands run before the hostile one (caching what it needs); each must succeed... unless
    /// it is itself where the input is refused (then the case ends there, refused).
    pub steps: Vec<Vec<String>>,
    /// Extra environment for every step.
    pub env: Vec<(String, String)>,
    /// What a refusal must mention (any one of these): the input it names.
    pub names: Vec<String>,
}

/// Where a case's inputs and the sentinel live: `outside` must never change.
pub struct Ground {
    pub inputs: PathBuf,
    pub outside: PathBuf,
    /// A registry reference of the base image, and where a case's image goes.
    pub base: String,
    pub registry: String,
}

impl Ground {
    fn input(&self, case: &str, name: &str) -> PathBuf {
        let dir = self.inputs.join(case);
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    pub fn tag(&self, case: &str) -> String {
        format!("{}/hostile/{}:1", self.registry, case.to_ascii_lowercase())
    }
}

use crate::tools::add_installer_args as add;

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|a| a.to_string()).collect()
}

fn add_patch(key: &str, path: &Path) -> Vec<String> {
    s(&[
        "cache",
        "addPatch",
        "--patchId",
        key,
        "--path",
        &path.display().to_string(),
    ])
}

/// Caches a JDK, an Oracle Home and a patch, then creates `tag` on `base` with that patch.
fn patched_create(
    tag: &str,
    base: &str,
    jdk: &Path,
    home: &Path,
    patch_key: &str,
    patch: &Path,
) -> Vec<Vec<String>> {
    vec![
        add("jdk", "17", jdk),
        add("wls", WLS_VERSION, home),
        add_patch(patch_key, patch),
        s(&[
            "create",
            "--tag",
            tag,
            "--fromImage",
            base,
            "--jdkVersion",
            "17",
            "--patches",
            patch_key,
        ]),
    ]
}

/// A tar.gz of raw entries: (name bytes, type, mode, data, link target).
struct RawEntry<'a> {
    name: &'a [u8],
    kind: tar::EntryType,
    mode: u32,
    data: &'a [u8],
    link: &'a [u8],
}

fn raw_tgz(path: &Path, entries: &[RawEntry]) {
    let gz =
        flate2::write::GzEncoder::new(std::fs::File::create(path).unwrap(), Default::default());
    let mut tar = tar::Builder::new(gz);
    for e in entries {
        let mut header = tar::Header::new_gnu();
        {
            let gnu = header.as_gnu_mut().unwrap();
            gnu.name[..e.name.len()].copy_from_slice(e.name);
            gnu.linkname[..e.link.len()].copy_from_slice(e.link);
        }
        header.set_entry_type(e.kind);
        header.set_mode(e.mode);
        header.set_size(e.data.len() as u64);
        header.set_cksum();
        tar.append(&header, e.data).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

fn dir(name: &[u8]) -> RawEntry<'_> {
    RawEntry {
        name,
        kind: tar::EntryType::Directory,
        mode: 0o755,
        data: b"",
        link: b"",
    }
}

fn file<'a>(name: &'a [u8], data: &'a [u8]) -> RawEntry<'a> {
    RawEntry {
        name,
        kind: tar::EntryType::Regular,
        mode: 0o644,
        data,
        link: b"",
    }
}

fn link<'a>(name: &'a [u8], kind: tar::EntryType, target: &'a [u8]) -> RawEntry<'a> {
    RawEntry {
        name,
        kind,
        mode: 0o777,
        data: b"",
        link: target,
    }
}

/// A JDK-shaped tar.gz (`jdk/bin/`, `jdk/release`) plus `extra` entries.
fn jdk_with(path: &Path, extra: Vec<RawEntry>) {
    let mut entries = vec![
        dir(b"jdk/"),
        dir(b"jdk/bin/"),
        file(b"jdk/release", b"JAVA_VERSION=\"17.0.99\"\n"),
    ];
    entries.extend(extra);
    raw_tgz(path, &entries);
}

fn zip_entries(path: &Path, build: impl FnOnce(&mut zip::ZipWriter<std::fs::File>)) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    build(&mut zip);
    zip.finish().unwrap();
}

fn options() -> zip::write::SimpleFileOptions {
    zip::write::SimpleFileOptions::default().unix_permissions(0o644)
}

const BILLION_LAUGHS: &str = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\"><!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\"><!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\"><!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\"><!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\"><!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\"><!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\"><!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">]>\n";

/// Every case, its inputs written under `ground.inputs`.
pub fn cases(ground: &Ground) -> Vec<Case> {
    let mut cases = Vec::new();
    let outside = ground.outside.display().to_string();
    let out_passwd = format!("{outside}/passwd");
    let good_home = ground.input("common", "wls.zip");
    weblogic::oracle_home_zip(&good_home, WLS_VERSION);
    let good_jdk = ground.input("common", "jdk.tar.gz");
    weblogic::fake_jdk_tgz(&good_jdk, "17.0.99");

    // ---- JDK installers: created with a good Oracle Home.
    let mut jdk_case = |name: &str, write: &dyn Fn(&Path), env: &[(&str, &str)]| {
        let path = ground.input(name, "jdk.tar.gz");
        write(&path);
        let tag = ground.tag(name);
        cases.push(Case {
            name: name.into(),
            steps: vec![
                add("wls", WLS_VERSION, &good_home),
                add("jdk", "17", &path),
                s(&[
                    "create",
                    "--tag",
                    &tag,
                    "--fromImage",
                    &ground.base,
                    "--jdkVersion",
                    "17",
                ]),
            ],
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            names: vec!["jdk_17".into()],
        });
    };
    let traversal = b"jdk/../../../../../../../../../../tmp/patchfarm-hostile-escape".to_vec();
    jdk_case(
        "jdk-traversal",
        &|p| jdk_with(p, vec![file(&traversal, b"escaped")]),
        &[],
    );
    let absolute = format!("{outside}/absolute");
    jdk_case(
        "jdk-absolute-path",
        &|p| jdk_with(p, vec![file(absolute.as_bytes(), b"escaped")]),
        &[],
    );
    jdk_case(
        "jdk-linked-dir-absolute",
        &|p| {
            jdk_with(
                p,
                vec![
                    link(b"jdk/lib", tar::EntryType::Symlink, outside.as_bytes()),
                    file(b"jdk/lib/evil", b"escaped"),
                ],
            )
        },
        &[],
    );
    jdk_case(
        "jdk-linked-dir-relative",
        &|p| {
            jdk_with(
                p,
                vec![
                    link(
                        b"jdk/lib",
                        tar::EntryType::Symlink,
                        b"../../../../../../../../../../../..",
                    ),
                    file(b"jdk/lib/tmp/patchfarm-hostile-escape", b"escaped"),
                ],
            )
        },
        &[],
    );
    jdk_case(
        "jdk-hardlink-host-file",
        &|p| {
            jdk_with(
                p,
                vec![link(
                    b"jdk/passwd",
                    tar::EntryType::Link,
                    out_passwd.as_bytes(),
                )],
            )
        },
        &[],
    );
    jdk_case(
        "jdk-release-links-host",
        &|p| {
            raw_tgz(
                p,
                &[
                    dir(b"jdk/"),
                    dir(b"jdk/bin/"),
                    link(
                        b"jdk/release",
                        tar::EntryType::Symlink,
                        out_passwd.as_bytes(),
                    ),
                ],
            )
        },
        &[],
    );
    jdk_case(
        "jdk-release-links-dev-zero",
        &|p| {
            raw_tgz(
                p,
                &[
                    dir(b"jdk/"),
                    dir(b"jdk/bin/"),
                    link(b"jdk/release", tar::EntryType::Symlink, b"/dev/zero"),
                ],
            )
        },
        &[],
    );
    jdk_case(
        "jdk-fifo-and-device",
        &|p| {
            jdk_with(
                p,
                vec![
                    RawEntry {
                        name: b"jdk/fifo",
                        kind: tar::EntryType::Fifo,
                        mode: 0o644,
                        data: b"",
                        link: b"",
                    },
                    RawEntry {
                        name: b"jdk/zero",
                        kind: tar::EntryType::Char,
                        mode: 0o666,
                        data: b"",
                        link: b"",
                    },
                ],
            )
        },
        &[],
    );
    jdk_case(
        "jdk-setuid-binary",
        &|p| {
            jdk_with(
                p,
                vec![RawEntry {
                    name: b"jdk/bin/su",
                    kind: tar::EntryType::Regular,
                    mode: 0o4755,
                    data: b"#!/bin/sh\n",
                    link: b"",
                }],
            )
        },
        &[],
    );
    jdk_case("jdk-sparse-64-gib", &|p| sparse(p, 64 << 30), &[]);
    jdk_case(
        "jdk-too-many-entries",
        &|p| {
            let names: Vec<Vec<u8>> = (0..300).map(|i| format!("jdk/f{i}").into_bytes()).collect();
            jdk_with(p, names.iter().map(|n| file(n, b"x")).collect())
        },
        &[("PATCHFARM_MAX_ARCHIVE_ENTRIES", "200")],
    );
    jdk_case(
        "jdk-truncated-gzip",
        &|p| {
            jdk_with(p, vec![file(b"jdk/bin/java", &[7u8; 100_000])]);
            let bytes = std::fs::read(p).unwrap();
            std::fs::write(p, &bytes[..bytes.len() / 2]).unwrap();
        },
        &[],
    );
    jdk_case(
        "jdk-random-bytes",
        &|p| std::fs::write(p, b"\x1f\x8b\x08\x00garbage garbage").unwrap(),
        &[],
    );
    jdk_case(
        "jdk-zip-overlapping-entries",
        &|p| crate::hostile::overlapping_zip(p, &[0u8; 1 << 20], 500),
        &[],
    );
    jdk_case(
        "jdk-zip-traversal",
        &|p| {
            zip_entries(p, |z| {
                z.start_file(
                    "jdk/../../../../../../tmp/patchfarm-hostile-escape",
                    options(),
                )
                .unwrap();
                z.write_all(b"escaped").unwrap();
            })
        },
        &[],
    );
    jdk_case(
        "jdk-zip-link-then-write",
        &|p| {
            zip_entries(p, |z| {
                z.add_symlink("jdk", &outside, options()).unwrap();
                z.start_file("jdk/release", options()).unwrap();
                z.write_all(b"JAVA_VERSION=\"owned\"\n").unwrap();
            })
        },
        &[],
    );

    // ---- Oracle Homes: created with a good JDK and a patch that writes into the home.
    let psu_dir = ground.input("common", "psu");
    std::fs::create_dir_all(&psu_dir).unwrap();
    let psu = weblogic::patch_zip(
        &psu_dir,
        "37000001",
        WLS_VERSION,
        &[],
        &[
            Act::Copy {
                dir: "wlserver/server/lib",
                name: "readme.txt",
                content: b"PSU readme\n",
            },
            Act::Jar {
                dir: "wlserver/server/lib",
                jar: "weblogic.jar",
                entry: "weblogic/Server.class",
                content: b"PSU",
            },
        ],
    );
    let psu_key = format!("37000001_{WLS_VERSION}");
    let mut home_case = |name: &str, write: &dyn Fn(&Path)| {
        let path = ground.input(name, "wls.zip");
        write(&path);
        let tag = ground.tag(name);
        cases.push(Case {
            name: name.into(),
            steps: patched_create(&tag, &ground.base, &good_jdk, &path, &psu_key, &psu),
            env: Vec::new(),
            names: vec![
                "wls_12.2.1.4.0".into(),
                "Oracle Home".into(),
                "ORACLE_HOME".into(),
            ],
        });
    };
    let registry_xml = format!("<?xml version=\"1.0\"?>\n<registry home=\"/u01/oracle\"><distributions><distribution status=\"installed\" name=\"WebLogic Server\" version=\"{WLS_VERSION}\"/></distributions></registry>\n");
    let home = |p: &Path, extra: &dyn Fn(&mut zip::ZipWriter<std::fs::File>)| {
        let jar = std::fs::read(good_jar(ground)).unwrap();
        zip_entries(p, |z| {
            z.start_file("inventory/registry.xml", options()).unwrap();
            z.write_all(registry_xml.as_bytes()).unwrap();
            extra(z);
            z.start_file(JAR, options()).unwrap();
            z.write_all(&jar).unwrap();
        })
    };
    home_case("home-oneoffs-links-host", &|p| {
        home(p, &|z| {
            z.add_symlink("inventory/oneoffs", &outside, options())
                .unwrap()
        })
    });
    home_case("home-oneoffs-leaf-links-host", &|p| {
        home(p, &|z| {
            z.add_directory("inventory/oneoffs/37000001/etc/config", options())
                .unwrap();
            z.add_symlink(
                "inventory/oneoffs/37000001/etc/config/inventory.xml",
                &out_passwd,
                options(),
            )
            .unwrap();
        })
    });
    home_case("home-readme-links-host", &|p| {
        home(p, &|z| {
            z.add_symlink("wlserver/server/lib/readme.txt", &out_passwd, options())
                .unwrap()
        })
    });
    home_case("home-lib-dir-links-host", &|p| {
        let jar = std::fs::read(good_jar(ground)).unwrap();
        zip_entries(p, |z| {
            z.start_file("inventory/registry.xml", options()).unwrap();
            z.write_all(registry_xml.as_bytes()).unwrap();
            z.add_symlink("wlserver/server/lib", &outside, options())
                .unwrap();
            z.start_file("weblogic.jar.keep", options()).unwrap();
            z.write_all(&jar).unwrap();
        })
    });
    home_case("home-registry-entity-bomb", &|p| {
        zip_entries(p, |z| {
            z.start_file("inventory/registry.xml", options()).unwrap();
            z.write_all(BILLION_LAUGHS.as_bytes()).unwrap();
            z.write_all(format!("<registry><distributions><distribution name=\"&lol9;\" version=\"{WLS_VERSION}\"/></distributions></registry>").as_bytes()).unwrap();
        })
    });
    home_case("home-without-registry", &|p| {
        zip_entries(p, |z| {
            z.start_file("readme.txt", options()).unwrap();
            z.write_all(b"no inventory").unwrap();
        })
    });

    // ---- Patches: into a good home.
    let mut patch_case = |name: &str, bug: &str, write: &dyn Fn(&Path) -> PathBuf| {
        let dir = ground.inputs.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let path = write(&dir);
        let key = format!("{bug}_{WLS_VERSION}");
        let tag = ground.tag(name);
        cases.push(Case {
            name: name.into(),
            steps: patched_create(&tag, &ground.base, &good_jdk, &good_home, &key, &path),
            env: Vec::new(),
            names: vec![key],
        });
    };
    patch_case("patch-copy-escapes-home", "37000005", &|d| {
        weblogic::patch_zip(
            d,
            "37000005",
            WLS_VERSION,
            &[],
            &[Act::Copy {
                dir: "../../../../tmp",
                name: "patchfarm-hostile-escape",
                content: b"escaped",
            }],
        )
    });
    patch_case("patch-jar-entry-escapes", "37000006", &|d| {
        weblogic::patch_zip(
            d,
            "37000006",
            WLS_VERSION,
            &[],
            &[Act::Jar {
                dir: "../../../..",
                jar: "tmp",
                entry: "patchfarm-hostile-escape",
                content: b"escaped",
            }],
        )
    });
    patch_case("patch-inventory-entity-bomb", "37000007", &|d| {
        let path = d.join("p37000007.zip");
        zip_entries(&path, |z| {
            z.start_file("37000007/etc/config/inventory.xml", options())
                .unwrap();
            z.write_all(BILLION_LAUGHS.as_bytes()).unwrap();
            z.write_all(b"<oneoff_inventory><patch_id number=\"37000007\"/><patch_description>&lol9;</patch_description></oneoff_inventory>").unwrap();
            z.start_file("37000007/etc/config/actions.xml", options())
                .unwrap();
            z.write_all(b"<oneoff_actions/>").unwrap();
        });
        path
    });
    patch_case("patch-inventory-17-mib", "37000008", &|d| {
        let path = d.join("p37000008.zip");
        zip_entries(&path, |z| {
            z.start_file(
                "37000008/etc/config/inventory.xml",
                zip::write::SimpleFileOptions::default(),
            )
            .unwrap();
            z.write_all(b"<oneoff_inventory><patch_id number=\"37000008\"/><!--")
                .unwrap();
            let spaces = vec![b' '; 1 << 20];
            for _ in 0..17 {
                z.write_all(&spaces).unwrap();
            }
            z.write_all(b"--></oneoff_inventory>").unwrap();
            z.start_file("37000008/etc/config/actions.xml", options())
                .unwrap();
            z.write_all(b"<oneoff_actions/>").unwrap();
        });
        path
    });
    patch_case("patch-overlapping-entries", "37000009", &|d| {
        let path = d.join("p37000009.zip");
        crate::hostile::overlapping_zip(&path, &[b'<'; 4096], 200);
        path
    });
    patch_case("patch-wrong-root", "37000010", &|d| {
        let made = weblogic::patch_zip(d, "37000099", WLS_VERSION, &[], &[]);
        let renamed = d.join("p37000010.zip");
        std::fs::rename(made, &renamed).unwrap();
        renamed
    });
    // Built safely: the payload is streamed from the zip, never held whole (the corpus's RSS
    // bound is 256 MiB).
    // Written in chunks: the test process stays small, since a child's measured peak RSS
    // starts from what it was forked with.
    patch_case("patch-payload-320-mib", "37000012", &|d| {
        let path = d.join("p37000012.zip");
        let rel = "wlserver/server/lib/big.bin";
        zip_entries(&path, |z| {
            z.start_file("37000012/etc/config/inventory.xml", options())
                .unwrap();
            z.write_all(format!("<oneoff_inventory><patch_id number=\"37000012\"/><required_components><component internal_name=\"oracle.wls.core.app.server\" version=\"{WLS_VERSION}\"/></required_components></oneoff_inventory>").as_bytes()).unwrap();
            z.start_file("37000012/etc/config/actions.xml", options())
                .unwrap();
            z.write_all(format!("<oneoff_actions><oracle.wls.core.app.server version=\"{WLS_VERSION}\"><copy file_name=\"{rel}\" name=\"big.bin\" path=\"%ORACLE_HOME%/wlserver/server/lib\"/></oracle.wls.core.app.server></oneoff_actions>").as_bytes()).unwrap();
            z.start_file(format!("37000012/files/{rel}"), options())
                .unwrap();
            let chunk = vec![0u8; 1 << 20];
            for _ in 0..320 {
                z.write_all(&chunk).unwrap();
            }
        });
        path
    });
    patch_case("patch-not-a-zip", "37000011", &|d| {
        let path = d.join("p37000011.zip");
        std::fs::write(&path, b"PK\x03\x04 but nothing else").unwrap();
        path
    });

    // ---- Cache verbs and local files.
    let fifo = ground.input("cache-fifo", "installer.zip");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    for (name, path, names) in [
        (
            "cache-fifo",
            fifo.display().to_string(),
            fifo.display().to_string(),
        ),
        ("cache-directory", outside.clone(), outside.clone()),
        (
            "cache-dev-zero",
            "/dev/zero".to_string(),
            "/dev/zero".to_string(),
        ),
    ] {
        cases.push(Case {
            name: name.into(),
            steps: vec![s(&[
                "cache",
                "addInstaller",
                "--type",
                "wls",
                "--version",
                WLS_VERSION,
                "--path",
                &path,
            ])],
            env: Vec::new(),
            names: vec![names],
        });
    }
    for (name, version) in [
        ("cache-version-traversal", "../../outside"),
        ("cache-version-slash", "12/../../x"),
        ("cache-version-control", "12\n4"),
    ] {
        cases.push(Case {
            name: name.into(),
            steps: vec![s(&[
                "cache",
                "addInstaller",
                "--type",
                "wls",
                "--version",
                version,
                "--path",
                &good_home.display().to_string(),
            ])],
            env: Vec::new(),
            names: vec!["version".into()],
        });
    }
    let catalog_fifo = ground.input("catalog-fifo", "catalog.yaml");
    std::process::Command::new("mkfifo")
        .arg(&catalog_fifo)
        .status()
        .unwrap();
    cases.push(Case {
        name: "catalog-fifo".into(),
        steps: vec![
            add("jdk", "17", &good_jdk),
            add("wls", WLS_VERSION, &good_home),
            s(&[
                "create",
                "--tag",
                &ground.tag("catalog-fifo"),
                "--fromImage",
                &ground.base,
                "--jdkVersion",
                "17",
                "--recommendedPatches",
                "--patchCatalog",
                &catalog_fifo.display().to_string(),
            ]),
        ],
        env: Vec::new(),
        names: vec![catalog_fifo.display().to_string()],
    });

    // ---- Image references.
    let long = format!("{}/{}:1", ground.registry, "a".repeat(5000));
    for (name, tag) in [
        ("ref-dotdot", format!("{}/hostile/../x:1", ground.registry)),
        ("ref-uppercase", format!("{}/Hostile/X:1", ground.registry)),
        ("ref-control", format!("{}/hostile/x:1\n2", ground.registry)),
        ("ref-5000-chars", long),
        ("ref-no-tag", format!("{}/hostile/x", ground.registry)),
        (
            "ref-bad-digest",
            format!("{}/hostile/x@sha256:zz", ground.registry),
        ),
    ] {
        cases.push(Case {
            name: name.into(),
            steps: vec![
                add("jdk", "17", &good_jdk),
                add("wls", WLS_VERSION, &good_home),
                s(&[
                    "create",
                    "--tag",
                    &tag,
                    "--fromImage",
                    &ground.base,
                    "--jdkVersion",
                    "17",
                ]),
            ],
            env: Vec::new(),
            names: vec!["--tag".into()],
        });
    }

    // ---- Campaign files.
    let mut campaign = |name: &str, text: &str, names: &str| {
        let path = ground.input(name, "campaign.yaml");
        std::fs::write(&path, text).unwrap();
        cases.push(Case {
            name: name.into(),
            steps: vec![s(&["campaign", "plan", &path.display().to_string()])],
            env: Vec::new(),
            names: vec![names.into()],
        });
    };
    let campaign_text = |registry: &str, tag: &str, retries: u32| {
        format!(
            "name: q4\nregistries: [{registry}]\nlimits: {{retries: {retries}}}\nbases:\n  - {{name: wls, type: wls, version: 12.2.1.4.0, jdkVersion: '17', fromImage: reg.example:5000/os/base:1, tag: '{tag}'}}\ndomains:\n  - {{name: pay, namespace: prod, domainHomeSourceType: DomainInImage, image: reg.example:5000/d/pay:1, base: wls}}\n"
        )
    };
    campaign(
        "campaign-oci-registry",
        &campaign_text(&format!("'oci:{outside}'"), "wls/base:1", 3),
        "oci:",
    );
    campaign(
        "campaign-dotdot-tag",
        &campaign_text("reg.example:5000", "../../x:1", 3),
        "..",
    );
    campaign(
        "campaign-zero-retries",
        &campaign_text("reg.example:5000", "wls/base:1", 0),
        "retries",
    );
    let mut alias_bomb =
        String::from("a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n");
    for level in 1..10 {
        let prev = (b'a' + level - 1) as char;
        let this = (b'a' + level) as char;
        alias_bomb.push_str(&format!("{this}: &{this} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
    }
    campaign("campaign-alias-bomb", &alias_bomb, "campaign.yaml");
    campaign("campaign-10-mib", &"#".repeat(10 << 20), "campaign.yaml");
    cases
}

fn good_jar(ground: &Ground) -> PathBuf {
    let path = ground.inputs.join("common/weblogic.jar");
    if !path.exists() {
        let home = ground.inputs.join("common/wls.zip");
        let mut zip = zip::ZipArchive::new(std::fs::File::open(home).unwrap()).unwrap();
        let mut entry = zip.by_name(JAR).unwrap();
        let mut out = std::fs::File::create(&path).unwrap();
        std::io::copy(&mut entry, &mut out).unwrap();
    }
    path
}

pub use patchfarm_engine::limits::bombs::{overlapping_zip, sparse_tgz as sparse};
