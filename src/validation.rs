//! Input rules shared by the forms, the API and the command line, so they cannot drift.

/// A light check: one `@`, something on both sides, a dot in the domain, no spaces.
pub fn is_plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert!(super::is_plausible_email("ana@alpine-tours.example"));
        assert!(!super::is_plausible_email("ana@localhost"));
        assert!(!super::is_plausible_email("@tours.example"));
        assert!(!super::is_plausible_email("ana tours@x.example"));
        assert!(!super::is_plausible_email("a@b@c.example"));
    }
}
