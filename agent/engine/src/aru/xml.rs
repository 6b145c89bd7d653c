//! ARU's XML answers, read as WIT's client reads them: `<results>` holding `<patch>` entries
//! (search by bug, recommended patches), `<release>` entries (the release table) or an
//! `<error>`. Parsed into a small element tree first; documents with a DOCTYPE are refused, so
//! no entity is ever expanded.

use super::AruError;
use quick_xml::events::Event;

/// A patch as ARU describes it (the fields WIT's `AruPatch` reads, plus the SHA-256 digest).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AruPatch {
    /// The bug number (`<name>`).
    pub patch_id: String,
    /// The release's name: the version the patch is for (`12.2.1.4.0`, or `12.2.1.4.250114` for
    /// a PSU overlay).
    pub version: String,
    /// The release's id (ARU's number for product + version).
    pub release: String,
    pub release_name: String,
    pub description: String,
    pub product: String,
    /// `Oracle WebLogic Server 12.2.1.4.250114` for a PSU, empty otherwise.
    pub psu_bundle: String,
    /// ARU's platform: 2000 generic, 226 linux/amd64, 541 linux/arm64.
    pub platform: u32,
    pub file_name: String,
    pub download_url: String,
    /// SHA-256 of the zip, lowercase hex, as ARU publishes it.
    pub sha256: String,
    pub size: u64,
}

impl AruPatch {
    pub fn is_psu(&self) -> bool {
        !self.psu_bundle.is_empty()
    }

    /// The PSU's version: the last word of its bundle name.
    pub fn psu_version(&self) -> Option<&str> {
        self.psu_bundle.rsplit(' ').next().filter(|v| !v.is_empty())
    }

    /// WIT leaves these out of every list: patch 34761383 and Stack Patch Bundles.
    pub fn is_irregular(&self) -> bool {
        self.patch_id == "34761383" || self.description.contains("STACK PATCH BUNDLE")
    }

    pub fn is_coherence_feature_pack(&self) -> bool {
        self.description.contains("Coherence 14.1.1 Feature Pack")
    }

    pub fn applies_to(&self, aru_platform: u32) -> bool {
        self.platform == 2000 || self.platform == aru_platform
    }
}

/// One entry of the release table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Release {
    pub id: String,
    pub name: String,
    /// `Oracle WebLogic Server 12.2.1.4.0`.
    pub text: String,
}

#[derive(Debug, Default)]
struct Element {
    name: String,
    attributes: Vec<(String, String)>,
    text: String,
    children: Vec<Element>,
}

impl Element {
    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    fn children<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    fn attribute(&self, name: &str) -> &str {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }

    /// The trimmed text of the child at `path` (`bug/abstract`), or "".
    fn text_at(&self, path: &str) -> String {
        let mut at = self;
        for part in path.split('/') {
            match at.child(part) {
                Some(next) => at = next,
                None => return String::new(),
            }
        }
        at.text.trim().to_owned()
    }
}

/// Nesting deeper than this is no ARU answer.
const MAX_DEPTH: usize = 32;

fn parse_tree(xml: &str, what: &str) -> Result<Element, AruError> {
    let bad = |reason: String| AruError::Malformed {
        what: what.into(),
        reason,
    };
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<Element> = vec![Element::default()];
    loop {
        let event = reader
            .read_event()
            .map_err(|e| bad(format!("not valid XML: {e}")))?;
        match event {
            Event::DocType(_) => return Err(bad("a DOCTYPE is not allowed".into())),
            Event::Start(ref e) | Event::Empty(ref e) => {
                let element = Element {
                    name: String::from_utf8_lossy(e.local_name().as_ref()).into_owned(),
                    attributes: e
                        .attributes()
                        .flatten()
                        .map(|a| {
                            (
                                String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned(),
                                a.unescape_value()
                                    .map(|v| v.into_owned())
                                    .unwrap_or_default(),
                            )
                        })
                        .collect(),
                    ..Default::default()
                };
                if matches!(event, Event::Empty(_)) {
                    stack.last_mut().expect("root").children.push(element);
                } else {
                    if stack.len() > MAX_DEPTH {
                        return Err(bad("nested too deeply".into()));
                    }
                    stack.push(element);
                }
            }
            Event::Text(t) => {
                let text = t.decode().map_err(|e| bad(e.to_string()))?;
                stack.last_mut().expect("root").text.push_str(&text);
            }
            // `&amp;` and `&#38;` arrive on their own; only XML's five and character references.
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(|e| bad(e.to_string()))? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().map_err(|e| bad(e.to_string()))?;
                        quick_xml::escape::resolve_predefined_entity(&name)
                            .ok_or_else(|| bad(format!("unknown entity &{name};")))?
                            .to_owned()
                    }
                };
                stack.last_mut().expect("root").text.push_str(&resolved);
            }
            Event::CData(t) => {
                let text = String::from_utf8_lossy(&t.into_inner()).into_owned();
                stack.last_mut().expect("root").text.push_str(&text);
            }
            Event::End(_) => {
                let done = stack.pop().expect("balanced");
                stack
                    .last_mut()
                    .ok_or_else(|| bad("unbalanced elements".into()))?
                    .children
                    .push(done);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let document = stack.pop().filter(|_| stack.is_empty());
    let root = document
        .and_then(|d| d.children.into_iter().next())
        .ok_or_else(|| bad("no root element".into()))?;
    if root.name != "results" {
        return Err(bad(format!("root <{}>, expected <results>", root.name)));
    }
    Ok(root)
}

/// `<results><error>`: 10-016 means nothing matched, anything else is the service's refusal.
fn check_error(root: &Element) -> Result<(), AruError> {
    match root.child("error") {
        None => Ok(()),
        Some(error) if error.text_at("id") == "10-016" => Err(AruError::NothingFound {
            message: error.text_at("message"),
        }),
        Some(error) => Err(AruError::Service {
            message: format!("{} ({})", error.text_at("message"), error.text_at("id")),
        }),
    }
}

/// The patches of a search answer on the platforms WIT considers (generic, amd64, arm64).
pub fn parse_patches(xml: &str, what: &str) -> Result<Vec<AruPatch>, AruError> {
    let root = parse_tree(xml, what)?;
    check_error(&root)?;
    let mut patches = Vec::new();
    for patch in root.children("patch") {
        let platform = patch
            .child("platform")
            .map(|p| p.attribute("id"))
            .unwrap_or("");
        let Ok(platform) = platform.parse::<u32>() else {
            continue;
        };
        if ![2000, 226, 541].contains(&platform) {
            continue;
        }
        let release = patch.child("release");
        let file = patch.child("files").and_then(|f| f.child("file"));
        let download = file.and_then(|f| f.child("download_url"));
        let download_path = download.map(|d| d.text.trim()).unwrap_or("");
        let sha256 = file
            .map(|f| {
                f.children("digest")
                    .find(|d| d.attribute("type").eq_ignore_ascii_case("SHA-256"))
                    .map(|d| d.text.trim().to_ascii_lowercase())
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        let file_name = download_path
            .split_once("patch_file=")
            .map(|(_, name)| name.split('&').next().unwrap_or(name).to_owned())
            .or_else(|| file.map(|f| f.text_at("name")))
            .unwrap_or_default();
        patches.push(AruPatch {
            patch_id: patch.text_at("name"),
            version: release.map(|r| r.attribute("name")).unwrap_or("").into(),
            release: release.map(|r| r.attribute("id")).unwrap_or("").into(),
            release_name: release.map(|r| r.text.trim()).unwrap_or("").into(),
            description: patch.text_at("bug/abstract"),
            product: patch
                .child("product")
                .map(|p| p.attribute("id"))
                .unwrap_or("")
                .into(),
            psu_bundle: patch.text_at("psu_bundle"),
            platform,
            file_name,
            download_url: format!(
                "{}{download_path}",
                download.map(|d| d.attribute("host")).unwrap_or("")
            ),
            sha256,
            size: file
                .map(|f| f.text_at("size"))
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
        });
    }
    if patches.is_empty() {
        return Err(AruError::NothingFound {
            message: format!("{what}: no patch for a generic, amd64 or arm64 platform"),
        });
    }
    Ok(patches)
}

/// The release table (`metadata?table=aru_releases`).
pub fn parse_releases(xml: &str, what: &str) -> Result<Vec<Release>, AruError> {
    let root = parse_tree(xml, what)?;
    check_error(&root)?;
    Ok(root
        .children("release")
        .map(|r| Release {
            id: r.attribute("id").into(),
            name: r.attribute("name").into(),
            text: r.text.trim().into(),
        })
        .collect())
}

/// Any answer that is `<results>` without an error (the credentials check).
pub fn check_results(xml: &str, what: &str) -> Result<(), AruError> {
    check_error(&parse_tree(xml, what)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATCH: &str = r#"<?xml version="1.0"?>
<!-- as ARU answers a search by bug -->
<results md5_sum="x">
  <patch has_prereqs="n">
    <bug><number>28186730</number><abstract><![CDATA[OPATCH 13.9.4.2.5 FOR FMW/WLS]]></abstract></bug>
    <name>28186730</name>
    <product id="31944" bugdb_id="12753"><![CDATA[OPatch]]></product>
    <release id="600000000159823" name="13.9.4.2.5"><![CDATA[OPatch 13.9.4.2.5]]></release>
    <platform id="2000" bugdb_id="289"><![CDATA[Generic Platform]]></platform>
    <files><file>
      <name>p28186730_139425_Generic.zip</name>
      <size>45855234</size>
      <download_url host="https://updates.oracle.com"><![CDATA[/Orion/Services/download/p28186730_139425_Generic.zip?aru=23901536&patch_file=p28186730_139425_Generic.zip]]></download_url>
      <digest type="SHA-256">8BFC99E439DA1D1663F88D6859EC19E9926A473C96B95889ABE5F45C055E1BB3</digest>
      <digest type="SHA-1">41E3536305E6A71776717D700FA41B1A1AB0A493</digest>
    </file></files>
  </patch>
  <patch><name>1</name><platform id="46"/></patch>
</results>"#;

    #[test]
    fn reads_a_patch_as_wits_client_does() {
        let patches = parse_patches(PATCH, "bug 28186730").unwrap();
        assert_eq!(patches.len(), 1, "platform 46 is not one WIT considers");
        let p = &patches[0];
        assert_eq!(p.patch_id, "28186730");
        assert_eq!(p.version, "13.9.4.2.5");
        assert_eq!(p.release, "600000000159823");
        assert_eq!(p.file_name, "p28186730_139425_Generic.zip");
        assert!(p
            .download_url
            .starts_with("https://updates.oracle.com/Orion/Services/download/"));
        assert_eq!(
            p.sha256,
            "8bfc99e439da1d1663f88d6859ec19e9926a473c96b95889abe5f45c055e1bb3"
        );
        assert_eq!(p.size, 45855234);
        assert!(!p.is_psu());
    }

    #[test]
    fn errors_and_hostile_documents_are_named() {
        let none =
            "<results><error><id>10-016</id><message>No patches found.</message></error></results>";
        assert!(matches!(
            parse_patches(none, "bug 1"),
            Err(AruError::NothingFound { .. })
        ));
        let other =
            "<results><error><id>10-001</id><message>Bad request</message></error></results>";
        assert!(matches!(
            parse_releases(other, "releases"),
            Err(AruError::Service { .. })
        ));
        let bomb = r#"<!DOCTYPE r [<!ENTITY a "aaaa">]><results>&a;</results>"#;
        assert!(matches!(
            parse_releases(bomb, "releases"),
            Err(AruError::Malformed { .. })
        ));
        assert!(parse_releases("<html>login</html>", "releases").is_err());
    }
}
