//! `--chown user:group` resolved against the base image's `/etc/passwd` and `/etc/group`:
//! names become numeric ids, and a missing user or group is added the way `useradd` would.

use super::RecipeError;
use crate::layer::Owner;

/// The owner to give new files, and the account files to write if entries had to be added.
#[derive(Clone, Debug)]
pub struct ResolvedOwner {
    pub user: String,
    pub group: String,
    pub owner: Owner,
    pub passwd: Option<Vec<u8>>,
    pub group_file: Option<Vec<u8>>,
}

/// Parses `user:group` (names or numbers); the group defaults to the user.
pub fn parse_chown(spec: &str) -> Result<(String, String), RecipeError> {
    let valid = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    };
    let (user, group) = spec.split_once(':').unwrap_or((spec, spec));
    if !valid(user) || !valid(group) {
        return Err(RecipeError::input(
            format!("--chown {spec}"),
            "expected USER:GROUP (names or numeric ids)",
        ));
    }
    Ok((user.into(), group.into()))
}

fn lookup(file: &str, name: &str) -> Option<u64> {
    file.lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split(':').collect();
            (fields.len() >= 3 && fields[0] == name)
                .then(|| fields[2].parse().ok())
                .flatten()
        })
        .next()
}

fn first_free_id(files: &[&str], column: usize) -> u64 {
    let used: std::collections::BTreeSet<u64> = files
        .iter()
        .flat_map(|f| f.lines())
        .filter_map(|l| l.split(':').nth(column).and_then(|id| id.parse().ok()))
        .collect();
    (1000..)
        .find(|id| !used.contains(id))
        .expect("an unused id exists")
}

fn with_line(file: &str, line: &str) -> Vec<u8> {
    let mut out = file.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(line);
    out.push('\n');
    out.into_bytes()
}

/// Resolves `user:group` given the base image's account files (None when the base has none).
pub fn resolve(
    user: &str,
    group: &str,
    passwd: Option<&str>,
    groups: Option<&str>,
) -> ResolvedOwner {
    let passwd_text = passwd.unwrap_or("root:x:0:0:root:/root:/bin/sh\n");
    let group_text = groups.unwrap_or("root:x:0:\n");
    let mut new_group = None;
    let gid = match group.parse::<u64>() {
        Ok(id) => id,
        Err(_) => lookup(group_text, group).unwrap_or_else(|| {
            let id = first_free_id(&[group_text], 2);
            new_group = Some(with_line(group_text, &format!("{group}:x:{id}:")));
            id
        }),
    };
    let mut new_passwd = None;
    let uid = match user.parse::<u64>() {
        Ok(id) => id,
        Err(_) => lookup(passwd_text, user).unwrap_or_else(|| {
            let id = first_free_id(&[passwd_text], 2);
            new_passwd = Some(with_line(
                passwd_text,
                &format!("{user}:x:{id}:{gid}::/home/{user}:/bin/sh"),
            ));
            id
        }),
    };
    ResolvedOwner {
        user: user.into(),
        group: group.into(),
        owner: Owner { uid, gid },
        passwd: new_passwd,
        group_file: new_group,
    }
}

/// The name for a numeric id in an account file (or the number itself).
pub fn name_of(file: Option<&str>, id: u64) -> String {
    file.and_then(|f| {
        f.lines().find_map(|l| {
            let fields: Vec<&str> = l.split(':').collect();
            (fields.len() >= 3 && fields[2].parse::<u64>().ok() == Some(id))
                .then(|| fields[0].to_string())
        })
    })
    .unwrap_or_else(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_missing_accounts_with_free_ids() {
        let passwd = "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh";
        let r = resolve(
            "oracle",
            "oracle",
            Some(passwd),
            Some("root:x:0:\nuser:x:1000:\n"),
        );
        assert_eq!(
            r.owner,
            Owner {
                uid: 1001,
                gid: 1001
            }
        );
        assert!(String::from_utf8(r.passwd.unwrap())
            .unwrap()
            .ends_with("oracle:x:1001:1001::/home/oracle:/bin/sh\n"));
        let existing = resolve("user", "user", Some(passwd), Some("user:x:1000:\n"));
        assert_eq!(
            existing.owner,
            Owner {
                uid: 1000,
                gid: 1000
            }
        );
        assert!(existing.passwd.is_none() && existing.group_file.is_none());
        assert_eq!(
            resolve("1234", "55", None, None).owner,
            Owner { uid: 1234, gid: 55 }
        );
        assert!(parse_chown("a b:c").is_err());
        assert_eq!(
            parse_chown("oracle").unwrap(),
            ("oracle".into(), "oracle".into())
        );
    }
}
