//! picocli's argument files, as WIT takes them: `patchfarm @build_args` reads arguments from the
//! file (separated by whitespace or new lines, quoted with `'` or `"`, `#` starting a comment),
//! in place of the `@FILE` argument; files may name further files. `@@x` is the literal `@x`;
//! an `@FILE` that names no readable file is an error naming it (picocli would pass it on, and a
//! mistyped path then fails far from its cause).

use anyhow::{bail, Context as _};
use std::ffi::OsString;

/// Nested files deeper than this are a loop.
const MAX_DEPTH: usize = 16;

/// The command line with every `@FILE` replaced by the arguments the file holds.
pub fn expand(args: impl IntoIterator<Item = OsString>) -> anyhow::Result<Vec<OsString>> {
    let mut out = Vec::new();
    for arg in args {
        push(arg, 0, &mut out)?;
    }
    Ok(out)
}

fn push(arg: OsString, depth: usize, out: &mut Vec<OsString>) -> anyhow::Result<()> {
    let Some(text) = arg.to_str() else {
        out.push(arg);
        return Ok(());
    };
    if let Some(literal) = text.strip_prefix("@@") {
        out.push(format!("@{literal}").into());
        return Ok(());
    }
    let Some(path) = text.strip_prefix('@').filter(|p| !p.is_empty()) else {
        out.push(arg);
        return Ok(());
    };
    if depth >= MAX_DEPTH {
        bail!("argument file {path}: nested more than {MAX_DEPTH} deep (does it name itself?)");
    }
    let meta = std::fs::metadata(path).with_context(|| format!("argument file {path}"))?;
    if !meta.is_file() || meta.len() > 1 << 20 {
        bail!("argument file {path}: not a regular file of at most 1 MiB");
    }
    let content = std::fs::read_to_string(path).with_context(|| format!("argument file {path}"))?;
    let words = shlex::split(&content)
        .with_context(|| format!("argument file {path}: a quote is not closed"))?;
    for word in words {
        push(word.into(), depth + 1, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn files_expand_in_place_with_quotes_comments_and_nesting() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("inner");
        std::fs::write(&inner, "--patches 37000001_12.2.1.4.0\n").unwrap();
        let outer = dir.path().join("build_args");
        std::fs::write(
            &outer,
            format!(
                "# WIT's example\ninspect\n--image 'wls:12.2.1.4.0'\n\"--label\" \"a b\"\n@{}\n",
                inner.display()
            ),
        )
        .unwrap();
        let expanded = expand(strings(&[
            "patchfarm",
            &format!("@{}", outer.display()),
            "@@literal",
        ]))
        .unwrap();
        assert_eq!(
            expanded,
            strings(&[
                "patchfarm",
                "inspect",
                "--image",
                "wls:12.2.1.4.0",
                "--label",
                "a b",
                "--patches",
                "37000001_12.2.1.4.0",
                "@literal",
            ])
        );
    }

    #[test]
    fn missing_looping_and_unclosed_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = expand(strings(&["@/no/such/args"])).unwrap_err();
        assert!(
            format!("{e:#}").contains("argument file /no/such/args"),
            "{e:#}"
        );
        let looped = dir.path().join("loop");
        std::fs::write(&looped, format!("@{}", looped.display())).unwrap();
        let e = expand(strings(&[&format!("@{}", looped.display())])).unwrap_err();
        assert!(e.to_string().contains("nested more than"), "{e}");
        let open = dir.path().join("open");
        std::fs::write(&open, "--tag 'unclosed").unwrap();
        let e = expand(strings(&[&format!("@{}", open.display())])).unwrap_err();
        assert!(e.to_string().contains("quote is not closed"), "{e}");
    }
}
