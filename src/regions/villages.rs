//! Villages as codes (issue 31): a business's `village_code` must be a village of its district,
//! and a village given as text is matched to its code by name within the district, case,
//! accents and a `Desa`/`Kelurahan` prefix folded ("Sidomulyo", "Ds. Sidomulyo" and
//! "sidomulyo " are one village). Text that matches no village, or two, stays as typed, without
//! a code, for an officer to settle (`umkm-api regions unmatched`).

use std::collections::HashMap;

use diesel::prelude::*;

use super::tree::fold;
use crate::db::DbConnection;
use crate::db::schema::{businesses, regions};

/// A village of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Village {
    /// Its code, `35.24.05.2001`.
    pub code: String,
    /// Its district's code.
    pub district: String,
    /// Its name in the decree.
    pub name: String,
}

/// Why a village code was refused: the problem's code and message for `village_code`.
pub type Refusal = (&'static str, String);

/// The villages a check needs, by code and by district and folded name.
#[derive(Debug, Default)]
pub struct Villages {
    by_code: HashMap<String, Village>,
    /// `None`: two villages of the district share the name.
    by_name: HashMap<(String, String), Option<String>>,
}

pub use crate::domain::codes::is_village_code as is_code;

/// What a village code that is not one is told.
pub const CODE_FORMAT: &str = "must be a village code like 35.24.14.2001";

/// A village's name as matched: folded (`tree::fold`), without a leading `desa`, `ds.`,
/// `kelurahan` or `kel.`.
pub fn name_key(text: &str) -> String {
    let folded = fold(text);
    for prefix in ["desa ", "ds. ", "ds ", "kelurahan ", "kel. ", "kel "] {
        if let Some(rest) = folded.strip_prefix(prefix)
            && !rest.is_empty()
        {
            return rest.trim_start().to_owned();
        }
    }
    folded
}

impl Villages {
    /// The villages of `districts`, and those of `codes` wherever they lie (to name a code's
    /// own district when it is not the business's).
    pub fn of(conn: &mut DbConnection, districts: &[&str], codes: &[&str]) -> QueryResult<Villages> {
        let rows: Vec<(String, Option<String>, String)> = regions::table
            .filter(regions::level.eq("village"))
            .filter(regions::parent_code.eq_any(districts).or(regions::code.eq_any(codes)))
            .select((regions::code, regions::parent_code, regions::name))
            .load(conn)?;
        Ok(Villages::from_rows(rows))
    }

    /// Every village of the tree (for matching a whole table's texts).
    pub fn all(conn: &mut DbConnection) -> QueryResult<Villages> {
        let rows = regions::table
            .filter(regions::level.eq("village"))
            .select((regions::code, regions::parent_code, regions::name))
            .load(conn)?;
        Ok(Villages::from_rows(rows))
    }

    /// These villages and `more`.
    pub fn extend(&mut self, more: Villages) {
        for (key, code) in more.by_name {
            self.by_name.entry(key).or_insert(code);
        }
        self.by_code.extend(more.by_code);
    }

    fn from_rows(rows: Vec<(String, Option<String>, String)>) -> Villages {
        let mut villages = Villages::default();
        for (code, district, name) in rows {
            let district = district.unwrap_or_default();
            villages
                .by_name
                .entry((district.clone(), name_key(&name)))
                .and_modify(|found| *found = None)
                .or_insert_with(|| Some(code.clone()));
            villages.by_code.insert(code.clone(), Village { code, district, name });
        }
        villages
    }

    /// The one village of `district` named `text`, if exactly one is.
    pub fn named(&self, district: &str, text: &str) -> Option<&Village> {
        let code = self.by_name.get(&(district.to_owned(), name_key(text)))?.as_ref()?;
        self.by_code.get(code)
    }

    /// A business's village in `district`, given as a `code` or as `text`: the code and the
    /// text to store. A code must be a village of the district (the text becomes its name);
    /// text alone gets the code of the village it names, if exactly one does, and stays as
    /// typed otherwise.
    pub fn settle(
        &self,
        district: &str,
        code: Option<&str>,
        text: Option<&str>,
    ) -> Result<(Option<String>, Option<String>), Refusal> {
        match (code, text) {
            (Some(code), _) => match self.by_code.get(code) {
                None => Err(("not_found", format!("no village has the code {code} in /regions"))),
                Some(village) if village.district != district => Err((
                    "not_in_district",
                    format!("{code} is a village of {}, not of district_code {district}", village.district),
                )),
                Some(village) => Ok((Some(village.code.clone()), Some(village.name.clone()))),
            },
            (None, Some(text)) => Ok(match self.named(district, text) {
                Some(village) => (Some(village.code.clone()), Some(village.name.clone())),
                None => (None, Some(text.to_owned())),
            }),
            (None, None) => Ok((None, None)),
        }
    }
}

/// The villages of the service area's districts (not retired), `(code, name)` by code, by
/// district: where the seeds place businesses.
pub fn served_by_district(conn: &mut DbConnection) -> QueryResult<HashMap<String, Vec<(String, String)>>> {
    let served: Vec<String> = super::served_districts(conn)?.into_iter().map(|(code, _)| code).collect();
    let rows: Vec<(String, Option<String>, String)> = regions::table
        .filter(regions::level.eq("village"))
        .filter(regions::retired.eq(false))
        .filter(regions::parent_code.eq_any(&served))
        .order(regions::code)
        .select((regions::code, regions::parent_code, regions::name))
        .load(conn)?;
    let mut villages: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for (code, district, name) in rows {
        villages.entry(district.unwrap_or_default()).or_default().push((code, name));
    }
    Ok(villages)
}

/// What matching the businesses' village texts did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Matched {
    /// Businesses given the code of the village their text names.
    pub matched: usize,
    /// Businesses whose text names no village of their district, or two.
    pub unmatched: usize,
}

/// Gives every business with a village text and no code the code of the village the text names
/// in its district, and the decree's name (once, after the migration that adds the codes).
pub fn match_texts(conn: &mut DbConnection) -> QueryResult<Matched> {
    let villages = Villages::all(conn)?;
    let texts: Vec<(i64, String, String)> = businesses::table
        .filter(businesses::village_code.is_null())
        .filter(businesses::village.is_not_null())
        .select((businesses::id, businesses::district_code, businesses::village.assume_not_null()))
        .load(conn)?;
    let mut by_village: HashMap<&Village, Vec<i64>> = HashMap::new();
    let mut outcome = Matched::default();
    for (id, district, text) in &texts {
        match villages.named(district, text) {
            Some(village) => by_village.entry(village).or_default().push(*id),
            None => outcome.unmatched += 1,
        }
    }
    for (village, ids) in by_village {
        // SQLite binds at most 32,766 values a statement.
        for chunk in ids.chunks(10_000) {
            outcome.matched += diesel::update(businesses::table.filter(businesses::id.eq_any(chunk)))
                .set((businesses::village_code.eq(&village.code), businesses::village.eq(&village.name)))
                .execute(conn)?;
        }
    }
    Ok(outcome)
}

/// The businesses whose village is text that matched no village of their district, or two:
/// `(id, district_code, village)`, by id.
pub fn unmatched(conn: &mut DbConnection) -> QueryResult<Vec<(i64, String, String)>> {
    businesses::table
        .filter(businesses::village_code.is_null())
        .filter(businesses::village.is_not_null())
        .order(businesses::id)
        .select((businesses::id, businesses::district_code, businesses::village.assume_not_null()))
        .load(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lamongan() -> Villages {
        Villages::from_rows(vec![
            ("35.24.05.2001".into(), Some("35.24.05".into()), "Bedahan".into()),
            ("35.24.05.2002".into(), Some("35.24.05".into()), "Sidomulyo".into()),
            ("35.24.06.2001".into(), Some("35.24.06".into()), "Sidomulyo".into()),
            ("35.24.07.2001".into(), Some("35.24.07".into()), "Kembar".into()),
            ("35.24.07.2002".into(), Some("35.24.07".into()), "Desa Kembar".into()),
        ])
    }

    #[test]
    fn texts_find_their_village_within_their_district() {
        let villages = lamongan();
        for text in ["Sidomulyo", "Ds. Sidomulyo", "sidomulyo ", "DESA  Sidómulyo", "Kel. Sidomulyo"] {
            assert_eq!(
                villages.named("35.24.05", text).map(|v| v.code.as_str()),
                Some("35.24.05.2002"),
                "{text}"
            );
        }
        assert_eq!(villages.named("35.24.06", "Sidomulyo").map(|v| v.code.as_str()), Some("35.24.06.2001"));
        // No such village in the district, and a name two of its villages share.
        assert_eq!(villages.named("35.24.05", "Kembar"), None);
        assert_eq!(villages.named("35.24.07", "Kembar"), None);
    }

    #[test]
    fn a_code_must_be_a_village_of_the_district() {
        let villages = lamongan();
        assert_eq!(
            villages.settle("35.24.05", Some("35.24.05.2002"), Some("typed")),
            Ok((Some("35.24.05.2002".into()), Some("Sidomulyo".into())))
        );
        assert_eq!(
            villages.settle("35.24.05", Some("35.24.06.2001"), None),
            Err((
                "not_in_district",
                "35.24.06.2001 is a village of 35.24.06, not of district_code 35.24.05".into()
            ))
        );
        assert_eq!(
            villages.settle("35.24.05", Some("35.24.05.2999"), None).map_err(|e| e.0),
            Err("not_found")
        );
        assert_eq!(
            villages.settle("35.24.05", None, Some("ds sidomulyo")),
            Ok((Some("35.24.05.2002".into()), Some("Sidomulyo".into())))
        );
        assert_eq!(
            villages.settle("35.24.05", None, Some("Dusun Krajan")),
            Ok((None, Some("Dusun Krajan".into())))
        );
        assert_eq!(villages.settle("35.24.05", None, None), Ok((None, None)));
    }
}
