//! What a caller without clearance for personal data sees of it.

fn mask_middle(value: &str, keep_start: usize, keep_end: usize) -> String {
    let chars: Vec<char> = value.chars().collect();
    if chars.len() <= keep_start + keep_end {
        return "*".repeat(chars.len());
    }
    let hidden = chars.len() - keep_start - keep_end;
    chars[..keep_start]
        .iter()
        .chain(std::iter::repeat_n(&'*', hidden))
        .chain(&chars[chars.len() - keep_end..])
        .collect()
}

/// `3524051203900001` → `3524********0001`: the regency stays visible, the person does not.
pub fn nik(value: &str) -> String {
    mask_middle(value, 4, 4)
}

/// `+628123456789` → `+62812****789`.
pub fn phone(value: &str) -> String {
    mask_middle(value, 6, 3)
}

/// `budi.santoso@example.com` → `b***@example.com`.
pub fn email(value: &str) -> String {
    match value.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

/// `Sri Wahyuni` → `S*** W***`: each word's first letter.
pub fn name(value: &str) -> String {
    let words: Vec<String> =
        value.split_whitespace().map(|w| format!("{}***", w.chars().next().unwrap_or('*'))).collect();
    if words.is_empty() { "***".into() } else { words.join(" ") }
}

/// `Jl. Raya Paciran No. 12` → `Jl. ***`: the kind of place, not where.
pub fn address(value: &str) -> String {
    match value.split_whitespace().next() {
        Some(first) if value.split_whitespace().nth(1).is_some() => format!("{first} ***"),
        _ => "***".into(),
    }
}

/// `012345678901000` → `01**********000`.
pub fn npwp(value: &str) -> String {
    mask_middle(value, 2, 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_match_the_spec() {
        assert_eq!(nik("3524011234560001"), "3524********0001");
        assert_eq!(phone("+628123456789"), "+62812****789");
        assert_eq!(phone("+62322321456"), "+62322***456");
        assert_eq!(email("budi.santoso@example.com"), "b***@example.com");
        assert_eq!(nik("123"), "***");
        assert_eq!(name("Sri Wahyuni"), "S*** W***");
        assert_eq!(name(" "), "***");
        assert_eq!(address("Jl. Raya Paciran No. 12"), "Jl. ***");
        assert_eq!(address("Paciran"), "***");
        assert_eq!(npwp("012345678901000"), "01**********000");
    }
}
