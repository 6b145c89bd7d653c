//! OPatch's two XML files in a one-off patch: `etc/config/inventory.xml` (what the patch is)
//! and `etc/config/actions.xml` (what it does to the Oracle Home).

use super::OpatchError;
use quick_xml::events::{BytesStart, Event};

/// What `inventory.xml` says about a patch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inventory {
    pub patch_id: String,
    pub unique_patch_id: Option<String>,
    pub description: String,
    /// (component internal name, version) pairs the patch requires.
    pub required_components: Vec<(String, String)>,
    /// Patch ids this patch is an overlay on.
    pub overlays: Vec<String>,
}

/// One action from `actions.xml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Payload `files/<file_name>` becomes `<dir>/<name>` (dir relative to ORACLE_HOME).
    Copy {
        file_name: String,
        name: String,
        dir: String,
    },
    /// Entry `class_name` of `<dir>/<jar>` is replaced by payload `files/<dir>/<jar>/<class_name>`.
    Jar {
        jar: String,
        dir: String,
        class_name: String,
    },
}

impl Action {
    /// The ORACLE_HOME-relative file the action writes (the copied file, or the rewritten jar).
    pub fn target(&self) -> String {
        let (dir, name) = match self {
            Action::Copy { name, dir, .. } => (dir, name),
            Action::Jar { jar, dir, .. } => (dir, jar),
        };
        if dir.is_empty() {
            name.clone()
        } else {
            format!("{dir}/{name}")
        }
    }
}

fn attr(e: &BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name.as_bytes())
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

fn bad(what: &str, reason: impl Into<String>) -> OpatchError {
    OpatchError::BadPatch {
        patch: what.into(),
        reason: reason.into(),
    }
}

/// Parses `inventory.xml`; `what` names the patch in errors.
pub fn parse_inventory(xml: &str, what: &str) -> Result<Inventory, OpatchError> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut inv = Inventory::default();
    let mut stack: Vec<String> = Vec::new();
    let mut saw_root = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| bad(what, format!("inventory.xml is not valid XML: {e}")))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if stack.is_empty() {
                    if name != "oneoff_inventory" {
                        return Err(bad(
                            what,
                            format!("inventory.xml has root <{name}>, expected <oneoff_inventory>"),
                        ));
                    }
                    saw_root = true;
                }
                let parent = stack.last().map(String::as_str).unwrap_or("");
                match (parent, name.as_str()) {
                    (_, "patch_id") => {
                        if let Some(n) = attr(e, "number") {
                            inv.patch_id = n;
                        }
                    }
                    ("required_components", "component") => {
                        let component = attr(e, "internal_name")
                            .or_else(|| attr(e, "name"))
                            .unwrap_or_default();
                        let version = attr(e, "version").unwrap_or_default();
                        inv.required_components.push((component, version));
                    }
                    ("overlay_oneoffs", _) => {
                        if let Some(n) = attr(e, "number").or_else(|| attr(e, "patch_id")) {
                            inv.overlays.push(n);
                        }
                    }
                    _ => {}
                }
                if matches!(event, Event::Start(_)) {
                    stack.push(name);
                }
            }
            Event::Text(t) => {
                let text = t.decode().map(|s| s.trim().to_string()).unwrap_or_default();
                if text.is_empty() {
                    continue;
                }
                let parent = stack.iter().rev().nth(1).map(String::as_str).unwrap_or("");
                match (parent, stack.last().map(String::as_str).unwrap_or("")) {
                    (_, "patch_id") if inv.patch_id.is_empty() => inv.patch_id = text,
                    (_, "unique_patch_id") => inv.unique_patch_id = Some(text),
                    (_, "patch_description") | ("oneoff_inventory", "description") => {
                        inv.description = text
                    }
                    ("overlay_oneoffs", _) => inv.overlays.push(text),
                    _ => {}
                }
            }
            Event::End(_) => {
                stack.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_root {
        return Err(bad(what, "inventory.xml is empty"));
    }
    if inv.patch_id.is_empty() {
        return Err(bad(what, "inventory.xml has no <patch_id>"));
    }
    Ok(inv)
}

/// `%ORACLE_HOME%/a/b` → `a/b` (relative to ORACLE_HOME), refusing anything that could escape it.
pub fn home_relative(path: &str, what: &str) -> Result<String, OpatchError> {
    let escape = |reason: &str| OpatchError::Escapes {
        patch: what.into(),
        path: path.into(),
        reason: reason.into(),
    };
    let rest = path
        .strip_prefix("%ORACLE_HOME%")
        .ok_or_else(|| escape("the path must start with %ORACLE_HOME%"))?;
    let mut parts = Vec::new();
    for part in rest.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => return Err(escape("'..' would leave ORACLE_HOME")),
            p if p.contains('%') => {
                return Err(escape("only %ORACLE_HOME% may be used as a variable"))
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// A relative file name inside the patch or the home: no `..`, not absolute, not empty.
pub fn plain_relative(name: &str, what: &str, path: &str) -> Result<String, OpatchError> {
    let escape = |reason: &str| OpatchError::Escapes {
        patch: what.into(),
        path: path.into(),
        reason: reason.into(),
    };
    if name.starts_with('/') || name.starts_with('\\') {
        return Err(escape("absolute paths are not allowed"));
    }
    let mut parts = Vec::new();
    for part in name.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => return Err(escape("'..' would leave ORACLE_HOME")),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(escape("names no file"));
    }
    Ok(parts.join("/"))
}

/// A patch's `actions.xml`: the actions the native engine applies, with ORACLE_HOME-relative
/// targets, and the names of those only OPatch itself can (`<make>`, `<archive>`, …), each once.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Actions {
    pub native: Vec<Action>,
    pub opatch_only: Vec<String>,
}

/// Parses `actions.xml`.
pub fn parse_actions(xml: &str, what: &str) -> Result<Actions, OpatchError> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut depth = 0usize;
    let mut actions = Actions::default();
    let mut saw_root = false;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| bad(what, format!("actions.xml is not valid XML: {e}")))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                match depth {
                    0 if name != "oneoff_actions" => {
                        return Err(bad(
                            what,
                            format!("actions.xml has root <{name}>, expected <oneoff_actions>"),
                        ))
                    }
                    0 => saw_root = true,
                    1 => {} // a component element (e.g. <oracle.wls.core.app.server>)
                    2 => match parse_action(&name, e, what)? {
                        Some(action) => actions.native.push(action),
                        None if !actions.opatch_only.contains(&name) => {
                            actions.opatch_only.push(name)
                        }
                        None => {}
                    },
                    _ => {}
                }
                if matches!(event, Event::Start(_)) {
                    depth += 1;
                }
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_root {
        return Err(bad(what, "actions.xml is empty"));
    }
    Ok(actions)
}

/// One action, `None` when the native engine does not implement it.
fn parse_action(name: &str, e: &BytesStart<'_>, what: &str) -> Result<Option<Action>, OpatchError> {
    let need = |attribute: &str| {
        attr(e, attribute).ok_or_else(|| {
            bad(
                what,
                format!("<{name}> action lacks the {attribute} attribute"),
            )
        })
    };
    match name {
        "copy" => {
            let path = need("path")?;
            let file_name = plain_relative(&need("file_name")?, what, &path)?;
            let default_name = file_name
                .rsplit('/')
                .next()
                .unwrap_or(&file_name)
                .to_string();
            let target_name = attr(e, "name").unwrap_or(default_name);
            let target_name = plain_relative(&target_name, what, &path)?;
            Ok(Some(Action::Copy {
                file_name,
                name: target_name,
                dir: home_relative(&path, what)?,
            }))
        }
        "jar" => {
            let path = need("path")?;
            Ok(Some(Action::Jar {
                jar: plain_relative(&need("name")?, what, &path)?,
                dir: home_relative(&path, what)?,
                class_name: plain_relative(&need("class_name")?, what, &path)?,
            }))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_inventory_with_components_and_overlays() {
        let xml = r#"<?xml version="1.0"?><oneoff_inventory><patch_id number="37000002"/>
            <unique_patch_id>9</unique_patch_id><patch_description>overlay fix</patch_description>
            <required_components><component internal_name="oracle.wls.core.app.server" version="12.2.1.4.0"/></required_components>
            <overlay_oneoffs><overlay_oneoff number="37000001"/></overlay_oneoffs></oneoff_inventory>"#;
        let inv = parse_inventory(xml, "p").unwrap();
        assert_eq!(inv.patch_id, "37000002");
        assert_eq!(inv.overlays, vec!["37000001"]);
        assert_eq!(
            inv.required_components,
            vec![("oracle.wls.core.app.server".into(), "12.2.1.4.0".into())]
        );
        assert_eq!(inv.description, "overlay fix");
        assert!(parse_inventory("<other/>", "p").is_err());
    }

    #[test]
    fn parses_actions_and_refuses_escapes_and_unknown_actions() {
        let xml = r#"<oneoff_actions><oracle.wls.core.app.server version="12.2.1.4.0">
            <copy file_name="wlserver/lib/a.txt" name="b.txt" path="%ORACLE_HOME%/wlserver/lib"/>
            <jar name="weblogic.jar" path="%ORACLE_HOME%/wlserver/server/lib" class_name="weblogic/Server.class"/>
            </oracle.wls.core.app.server></oneoff_actions>"#;
        let actions = parse_actions(xml, "p").unwrap().native;
        assert_eq!(
            actions[0],
            Action::Copy {
                file_name: "wlserver/lib/a.txt".into(),
                name: "b.txt".into(),
                dir: "wlserver/lib".into()
            }
        );
        assert_eq!(
            actions[1],
            Action::Jar {
                jar: "weblogic.jar".into(),
                dir: "wlserver/server/lib".into(),
                class_name: "weblogic/Server.class".into()
            }
        );
        let escape = r#"<oneoff_actions><c><copy file_name="x" path="%ORACLE_HOME%/../../etc"/></c></oneoff_actions>"#;
        assert!(matches!(
            parse_actions(escape, "p"),
            Err(OpatchError::Escapes { .. })
        ));
        let absolute =
            r#"<oneoff_actions><c><copy file_name="x" path="/etc"/></c></oneoff_actions>"#;
        assert!(matches!(
            parse_actions(absolute, "p"),
            Err(OpatchError::Escapes { .. })
        ));
        let unknown =
            r#"<oneoff_actions><c><make target="x"/><make target="y"/></c></oneoff_actions>"#;
        let actions = parse_actions(unknown, "p").unwrap();
        assert_eq!(actions.opatch_only, ["make"], "each name once");
        assert!(actions.native.is_empty());
    }
}
