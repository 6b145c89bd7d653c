//! Property tests of the parsers that read untrusted text and archives: image references, cache
//! keys, OPatch's inventory and actions XML, an Oracle Home's registry, and installer archives.
//! Any input: no panic, and what parses prints back to itself; archives never write outside
//! their destination. `tests/fuzz.sh` runs these with many more cases.

use patchfarm_engine::cache::CacheKey;
use patchfarm_engine::image::ImageRef;
use patchfarm_engine::installer::parse_registry;
use patchfarm_engine::opatch::xml::{parse_actions, parse_inventory};
use proptest::prelude::*;
use std::io::Write;

fn reference_like() -> impl Strategy<Value = String> {
    let host = prop_oneof![
        Just("registry.example.com".to_string()),
        Just("127.0.0.1:5000".to_string()),
        Just("[::1]:5000".to_string()),
        "[a-z0-9.:-]{1,20}",
    ];
    let repo = "[a-zA-Z0-9._/-]{1,30}";
    let tail = prop_oneof![
        "(:[a-zA-Z0-9._-]{1,20})?",
        "@sha256:[0-9a-f]{64}",
        "@sha256:[0-9a-zA-Z]{0,70}",
        ".{0,10}",
    ];
    (host, repo, tail).prop_map(|(h, r, t)| format!("{h}/{r}{t}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(256)
    ))]

    #[test]
    fn image_references_parse_or_refuse_and_print_back(text in prop_oneof![reference_like(), ".{0,80}"]) {
        if let Ok(parsed) = text.parse::<ImageRef>() {
            let printed = parsed.to_string();
            let again: ImageRef = printed.parse().expect("what prints must parse");
            prop_assert_eq!(again.to_string(), printed.clone());
            prop_assert!(!printed.chars().any(char::is_control));
        }
    }

    #[test]
    fn cache_keys_parse_or_refuse_and_print_back(text in "[a-zA-Z0-9._/ -]{0,40}") {
        if let Ok(key) = text.parse::<CacheKey>() {
            let printed = key.to_string();
            prop_assert!(!printed.contains('/') && !printed.contains(".."), "{}", printed);
            prop_assert_eq!(printed.parse::<CacheKey>().unwrap().to_string(), printed);
        }
    }

    #[test]
    fn opatch_xml_never_panics_nor_expands_entities(
        body in ".{0,200}",
        id in "[0-9]{1,9}",
        entity in prop::bool::ANY,
    ) {
        let doctype = if entity {
            "<!DOCTYPE x [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">]>"
        } else {
            ""
        };
        let inventory = format!(
            "<?xml version=\"1.0\"?>{doctype}<oneoff_inventory><patch_id number=\"{id}\"/><patch_description>&b;{body}</patch_description></oneoff_inventory>"
        );
        if let Ok(parsed) = parse_inventory(&inventory, "fuzz") {
            prop_assert_eq!(&parsed.patch_id, &id);
            prop_assert!(parsed.description.len() <= inventory.len(), "an entity was expanded");
        }
        let _ = parse_inventory(&body, "fuzz");
        let actions = format!(
            "<oneoff_actions><oracle.wls version=\"1\"><copy file_name=\"{body}\" name=\"x\" path=\"%ORACLE_HOME%/{body}\"/></oracle.wls></oneoff_actions>"
        );
        let _ = parse_actions(&actions, "fuzz");
        let _ = parse_actions(&body, "fuzz");
        let _ = parse_registry(&body);
        let _ = parse_registry(&inventory);
    }

    #[test]
    fn mutated_archives_never_panic_nor_write_outside(
        entries in prop::collection::vec(("[a-z./]{1,24}", prop::collection::vec(any::<u8>(), 0..64)), 1..6),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        as_zip in prop::bool::ANY,
    ) {
        let work = tempfile::tempdir().unwrap();
        let archive = work.path().join("in");
        let mut bytes = if as_zip {
            let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            for (name, data) in &entries {
                if zip.start_file(name.as_str(), zip::write::SimpleFileOptions::default()).is_ok() {
                    zip.write_all(data).unwrap();
                }
            }
            zip.finish().unwrap().into_inner()
        } else {
            let mut tar = tar::Builder::new(Vec::new());
            for (name, data) in &entries {
                let mut header = tar::Header::new_gnu();
                let raw = name.as_bytes();
                header.as_gnu_mut().unwrap().name[..raw.len()].copy_from_slice(raw);
                header.set_size(data.len() as u64);
                header.set_mode(0o644);
                header.set_cksum();
                tar.append(&header, data.as_slice()).unwrap();
            }
            tar.into_inner().unwrap()
        };
        for (at, byte) in flips {
            if !bytes.is_empty() {
                let at = at % bytes.len();
                bytes[at] ^= byte;
            }
        }
        std::fs::write(&archive, &bytes).unwrap();
        let dest = work.path().join("dest");
        let _ = patchfarm_engine::installer::unpack_jdk("jdk_fuzz", &archive, "in", &dest);
        // Only `in` and `dest` may exist beside each other.
        let mut names: Vec<String> = std::fs::read_dir(work.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        prop_assert!(names.iter().all(|n| n == "in" || n == "dest"), "{:?}", names);
    }
}
