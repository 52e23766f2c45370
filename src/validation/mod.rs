//! Input rules shared by the forms, the API and the command line, so they cannot drift:
//! emails, a webhook's fields, and which addresses a webhook may reach (the SSRF guard).

pub mod ssrf;
pub mod webhook;

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

/// Whether text holds an encoded NUL character (`%00`): no address of Hookboard has a use
/// for it, and PostgreSQL cannot store it.
pub fn has_encoded_nul(text: &str) -> bool {
    text.as_bytes().windows(3).any(|w| w == b"%00")
}

/// What an address with an encoded NUL is told.
pub const NUL_MESSAGE: &str = "The address may not contain the NUL character (%00).";

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
