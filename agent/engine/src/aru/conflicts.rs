//! ARU's conflict check, as WIT runs it before it downloads anything: the candidate patches
//! (bug number and release id) posted to `conflict_checks`; the sets of patches that conflict
//! with each other come back, and a build with any is refused, naming them.

use super::xml::AruPatch;
use super::{AruClient, AruError};
use quick_xml::events::Event;

fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

/// WIT's `conflict-check.mustache`: generic platform, the installed patches by unique patch
/// id, one `patch_group` per candidate.
pub fn request_xml(installed: &[String], candidates: &[AruPatch]) -> String {
    let targets: String = installed
        .iter()
        .map(|upi| format!("    <installed_patch upi=\"{}\"/>\n", escape(upi)))
        .collect();
    let groups: String = candidates
        .iter()
        .map(|p| {
            format!(
                "    <patch_group rel_id=\"{}\">{}</patch_group>\n",
                escape(&p.release),
                escape(&p.patch_id)
            )
        })
        .collect();
    format!(
        "<conflict_check_request>\n  <platform>2000</platform>\n  <target_patch_list>\n{targets}  </target_patch_list>\n  <candidate_patch_list>\n{groups}  </candidate_patch_list>\n</conflict_check_request>\n"
    )
}

/// The bug numbers of each `conflict_sets/set` (`merge_patches/patch/bug/number`), in order.
pub fn parse_conflict_sets(xml: &str) -> Result<Vec<Vec<String>>, AruError> {
    let malformed = |reason: String| AruError::Malformed {
        what: "the conflict check".into(),
        reason,
    };
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let (mut sets, mut seen_root) = (Vec::new(), false);
    loop {
        match reader.read_event().map_err(|e| malformed(e.to_string()))? {
            Event::Start(start) => {
                let name = String::from_utf8_lossy(start.name().as_ref()).into_owned();
                if path.is_empty() {
                    seen_root = name == "conflict_check";
                }
                path.push(name);
                if path.join("/") == "conflict_check/conflict_sets/set" {
                    sets.push(Vec::new());
                }
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(text)
                if path.join("/")
                    == "conflict_check/conflict_sets/set/merge_patches/patch/bug/number" =>
            {
                let number = text
                    .decode()
                    .map_err(|e| malformed(e.to_string()))?
                    .trim()
                    .to_string();
                if let Some(set) = sets.last_mut() {
                    set.push(number);
                }
            }
            Event::DocType(_) => return Err(malformed("a DOCTYPE is not accepted".into())),
            Event::Eof => break,
            _ => {}
        }
    }
    if !seen_root {
        return Err(malformed("no <conflict_check> element".into()));
    }
    Ok(sets.into_iter().filter(|set| !set.is_empty()).collect())
}

impl AruClient {
    /// The sets of `candidates` (with the `installed` patches, by unique patch id) that
    /// conflict (empty: none). An answer the service could not give in time is not a conflict:
    /// WIT warns and goes on, and so does the caller.
    pub async fn conflicts(
        &self,
        installed: &[String],
        candidates: &[AruPatch],
    ) -> Result<Vec<Vec<String>>, AruError> {
        let xml = self
            .post_xml("/conflict_checks", request_xml(installed, candidates))
            .await?;
        parse_conflict_sets(&xml)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflict_sets_are_read_as_wit_reads_them() {
        let none = "<conflict_check platform_id=\"2000\"><conflict_free_list></conflict_free_list><conflict_sets>\n</conflict_sets><messages></messages></conflict_check>";
        assert!(parse_conflict_sets(none).unwrap().is_empty());
        let two = r#"<conflict_check platform_id="2000"><conflict_sets>
            <set><merge_patches>
              <patch flag="candidate" release_id="600000000098910"><bug><number>11111111</number><abstract><![CDATA[some bug]]></abstract></bug><patch_name>11111111</patch_name></patch>
              <patch flag="candidate" release_id="600000000098910"><bug><number>22222222</number></bug></patch>
            </merge_patches><merge_bugs release_id="600000000098910"><bug>11111111</bug><bug>22222222</bug></merge_bugs></set>
            <set><merge_patches><patch><bug><number>33333333</number></bug></patch><patch><bug><number>44444444</number></bug></patch></merge_patches></set>
          </conflict_sets></conflict_check>"#;
        assert_eq!(
            parse_conflict_sets(two).unwrap(),
            [vec!["11111111", "22222222"], vec!["33333333", "44444444"]]
        );
        assert!(parse_conflict_sets("<results/>").is_err());
        assert!(parse_conflict_sets("<!DOCTYPE x [<!ENTITY a 'b'>]><conflict_check/>").is_err());
    }

    #[test]
    fn the_request_names_each_candidate_with_its_release() {
        let patch = AruPatch {
            patch_id: "37000001".into(),
            release: "600000000073715".into(),
            ..Default::default()
        };
        let xml = request_xml(&["25000001".into()], &[patch]);
        assert!(
            xml.contains("<target_patch_list>\n    <installed_patch upi=\"25000001\"/>\n"),
            "{xml}"
        );
        assert!(
            xml.contains("<patch_group rel_id=\"600000000073715\">37000001</patch_group>"),
            "{xml}"
        );
        assert!(xml.contains("<platform>2000</platform>"));
    }
}
