//! Indonesia's region tree from a decree's files (Kepmendagri 300.2.2-2138/2025, shipped in
//! `reference/regions/` under the ODbL): loaded once after the migrations, replaced by a newer
//! decree's files with `umkm-api regions import DIR`, which reports what changed. A code the
//! newer decree no longer lists is kept, `retired`, so that records using it stay valid; the
//! service area (`SERVICE_AREA`) marks its regions `served`.

use std::collections::HashMap;

use diesel::prelude::*;

use crate::db::schema::regions;
use crate::db::{self, DbConnection};
use crate::error::{AppError, AppResult};

/// The decree shipped with this release.
const SHIPPED: [(&str, &str); 4] = [
    ("provinces.csv", include_str!("../../reference/regions/provinces.csv")),
    ("regencies.csv", include_str!("../../reference/regions/regencies.csv")),
    ("districts.csv", include_str!("../../reference/regions/districts.csv")),
    ("villages.csv", include_str!("../../reference/regions/villages.csv")),
];

/// The levels in the order of the files, parents first.
const LEVELS: [&str; 4] = ["province", "regency", "district", "village"];

/// Rows written per INSERT while loading.
const BATCH: usize = 500;

/// A name as the search compares it: lower case, accents and the typographic apostrophe
/// folded (`Regapu’u` and `regapu'u`, `Désa` and `desa` alike), spaces collapsed.
pub fn fold(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let mut folded = String::with_capacity(name.len());
    for c in name.nfd().filter(|c| !unicode_normalization::char::is_combining_mark(*c)) {
        match c {
            '\u{2018}' | '\u{2019}' | '`' => folded.push('\''),
            c if c.is_whitespace() => {
                if !folded.is_empty() && !folded.ends_with(' ') {
                    folded.push(' ');
                }
            }
            c => folded.extend(c.to_lowercase()),
        }
    }
    folded.truncate(folded.trim_end().len());
    folded
}

/// One row of a decree.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    code: String,
    name: String,
    level: &'static str,
    parent: Option<String>,
}

/// A decree's regions, parents before children.
pub struct Decree {
    rows: Vec<Row>,
}

impl Decree {
    /// The decree shipped with this release.
    pub fn shipped() -> Result<Decree, String> {
        Decree::parse(SHIPPED.map(|(name, text)| (name.to_owned(), text.to_owned())))
    }

    /// A decree's four files (`provinces.csv`, `regencies.csv`, `districts.csv`, `villages.csv`,
    /// as `reference/regions/` holds them) read from `dir`.
    pub fn read(dir: &std::path::Path) -> Result<Decree, String> {
        let files = SHIPPED.map(|(name, _)| {
            let path = dir.join(name);
            std::fs::read_to_string(&path)
                .map(|text| (name.to_owned(), text))
                .map_err(|e| format!("{}: {e}", path.display()))
        });
        let [a, b, c, d] = files;
        Decree::parse([a?, b?, c?, d?])
    }

    fn parse(files: [(String, String); 4]) -> Result<Decree, String> {
        let mut rows = Vec::new();
        let mut known: HashMap<String, &'static str> = HashMap::new();
        for (level_index, (file, text)) in files.iter().enumerate() {
            let level = LEVELS[level_index];
            let mut reader = csv::Reader::from_reader(text.as_bytes());
            for (line, record) in reader.records().enumerate() {
                let at = || format!("{file}, row {}", line + 2);
                let record = record.map_err(|e| format!("{}: {e}", at()))?;
                let field = |i: usize| record.get(i).map(str::trim).filter(|f| !f.is_empty());
                let code = field(0).ok_or_else(|| format!("{}: no code", at()))?;
                let segments = code.split('.').collect::<Vec<_>>();
                if segments.len() != level_index + 1
                    || segments.iter().any(|s| s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()))
                {
                    return Err(format!("{}: {code} is not a {level} code", at()));
                }
                let (parent, name) = if level_index == 0 { (None, field(1)) } else { (field(1), field(2)) };
                let name = name.ok_or_else(|| format!("{}: {code} has no name", at()))?;
                if let Some(parent) = parent {
                    let expected = &code[..code.rfind('.').unwrap_or(0)];
                    if parent != expected || known.get(parent) != Some(&LEVELS[level_index - 1]) {
                        return Err(format!(
                            "{}: {code}'s parent {parent} is not the {} {expected}",
                            at(),
                            LEVELS[level_index - 1]
                        ));
                    }
                }
                if known.insert(code.to_owned(), level).is_some() {
                    return Err(format!("{}: {code} is listed twice", at()));
                }
                rows.push(Row {
                    code: code.to_owned(),
                    name: name.to_owned(),
                    level,
                    parent: parent.map(str::to_owned),
                });
            }
        }
        Ok(Decree { rows })
    }

    /// Regions of each level, in the order of [`LEVELS`].
    pub fn counts(&self) -> [usize; 4] {
        let mut counts = [0; 4];
        for row in &self.rows {
            counts[LEVELS.iter().position(|l| *l == row.level).unwrap_or(0)] += 1;
        }
        counts
    }
}

/// A region as [`load`] adds it.
#[derive(Insertable)]
#[diesel(table_name = regions, treat_none_as_default_value = false)]
struct NewRegion {
    code: String,
    name: String,
    level: &'static str,
    parent_code: Option<String>,
    name_folded: String,
    retired: bool,
    served: bool,
}

/// What a load changed.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Changes {
    /// Codes new to the database.
    pub added: Vec<String>,
    /// Codes whose name or parent changed: `code: old name -> new name`.
    pub renamed: Vec<String>,
    /// Codes the decree no longer lists, kept as retired.
    pub retired: Vec<String>,
    /// Retired codes the decree lists again.
    pub restored: Vec<String>,
}

/// Makes the regions those of `decree`, in one transaction: codes added, names and parents
/// changed, codes it does not list retired (never removed: a business may use one).
pub fn load(conn: &mut DbConnection, decree: &Decree) -> AppResult<Changes> {
    db::write(conn, |conn| load_in(conn, decree))
}

/// What [`load`] would change, changing nothing.
pub fn compare(conn: &mut DbConnection, decree: &Decree) -> AppResult<Changes> {
    /// A load undone: its changes, or why it failed.
    enum Undone {
        Changes(Changes),
        Failed(AppError),
    }
    impl From<diesel::result::Error> for Undone {
        fn from(e: diesel::result::Error) -> Undone {
            Undone::Failed(e.into())
        }
    }
    let undone = db::write(conn, |conn| -> Result<(), Undone> {
        Err(match load_in(conn, decree) {
            Ok(changes) => Undone::Changes(changes),
            Err(e) => Undone::Failed(e),
        })
    });
    match undone {
        Err(Undone::Changes(changes)) => Ok(changes),
        Err(Undone::Failed(e)) => Err(e),
        Ok(()) => Err(AppError::internal("a comparison was committed")),
    }
}

fn load_in(conn: &mut DbConnection, decree: &Decree) -> AppResult<Changes> {
    type Stored = (String, String, Option<String>, String, bool);
    let stored: HashMap<String, Stored> = regions::table
        .select((regions::code, regions::name, regions::parent_code, regions::name_folded, regions::retired))
        .load::<Stored>(conn)?
        .into_iter()
        .map(|row| (row.0.clone(), row))
        .collect();
    let mut changes = Changes::default();
    let mut new = Vec::new();
    for row in &decree.rows {
        let folded = fold(&row.name);
        match stored.get(&row.code) {
            None => {
                changes.added.push(row.code.clone());
                new.push(NewRegion {
                    code: row.code.clone(),
                    name: row.name.clone(),
                    level: row.level,
                    parent_code: row.parent.clone(),
                    name_folded: folded,
                    retired: false,
                    served: false,
                });
            }
            Some((_, name, parent, stored_folded, retired)) => {
                if *name != row.name || *parent != row.parent {
                    changes.renamed.push(format!("{}: {name} -> {}", row.code, row.name));
                }
                if *retired {
                    changes.restored.push(row.code.clone());
                }
                if *name != row.name || *parent != row.parent || *stored_folded != folded || *retired {
                    diesel::update(regions::table.find(&row.code))
                        .set((
                            regions::name.eq(&row.name),
                            regions::parent_code.eq(&row.parent),
                            regions::name_folded.eq(&folded),
                            regions::retired.eq(false),
                        ))
                        .execute(conn)?;
                }
            }
        }
    }
    // Parents first, as the decree lists them: COPY on PostgreSQL, batches on SQLite.
    crate::db::write_rows!(conn, regions::table, &new)?;
    let listed: std::collections::HashSet<&str> = decree.rows.iter().map(|r| r.code.as_str()).collect();
    let mut gone: Vec<String> = stored
        .values()
        .filter(|(code, _, _, _, retired)| !retired && !listed.contains(code.as_str()))
        .map(|row| row.0.clone())
        .collect();
    gone.sort();
    for batch in gone.chunks(BATCH) {
        diesel::update(regions::table.filter(regions::code.eq_any(batch)))
            .set(regions::retired.eq(true))
            .execute(conn)?;
    }
    changes.retired = gone;
    changes.added.sort();
    Ok(changes)
}

/// `umkm-api regions …`: the regions' tree at the command line.
#[derive(Debug, clap::Subcommand)]
pub enum RegionsCommand {
    /// Replace the tree by a newer decree's files (`provinces.csv`, `regencies.csv`,
    /// `districts.csv`, `villages.csv`, shaped as `reference/regions/` holds them), in one
    /// transaction, and list the codes added, renamed, retired and restored. A retired code stays
    /// for the records that use it.
    Import {
        /// The directory of the four files.
        dir: std::path::PathBuf,
        /// List what would change, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// List the businesses whose village is text that names no village of their district (or
    /// two), for an officer to settle by setting `village_code`: id, district, text.
    Unmatched,
}

/// Runs a `regions` command for an installation serving `area`; what it prints.
pub fn command(conn: &mut DbConnection, area: &[String], command: RegionsCommand) -> Result<String, String> {
    use std::fmt::Write;
    let (dir, dry_run) = match command {
        RegionsCommand::Import { dir, dry_run } => (dir, dry_run),
        RegionsCommand::Unmatched => {
            let found = super::villages::unmatched(conn).map_err(|e| e.to_string())?;
            let mut out = String::new();
            for (id, district, text) in &found {
                let _ = writeln!(out, "{id}\t{district}\t{text}");
            }
            let _ = writeln!(
                out,
                "{} business(es) with a village no code was found for; settle each with PATCH \
                 /api/v1/businesses/{{id}} {{\"village_code\": …}}",
                found.len()
            );
            return Ok(out);
        }
    };
    let decree = Decree::read(&dir)?;
    let changes = if dry_run { compare(conn, &decree) } else { load(conn, &decree) };
    let changes = changes.map_err(|e| e.to_string())?;
    if !dry_run {
        // New regions of the service area are served at once.
        serve(conn, area).map_err(|e| e.to_string())?;
    }
    let mut out = String::new();
    for (what, codes) in [
        ("added", &changes.added),
        ("renamed", &changes.renamed),
        ("retired", &changes.retired),
        ("restored", &changes.restored),
    ] {
        for code in codes {
            let _ = writeln!(out, "{what}\t{code}");
        }
    }
    let _ = writeln!(
        out,
        "{} added, {} renamed, {} retired, {} restored{}",
        changes.added.len(),
        changes.renamed.len(),
        changes.retired.len(),
        changes.restored.len(),
        if dry_run { " (a dry run: nothing changed)" } else { "" }
    );
    Ok(out)
}

/// Loads the shipped decree into a database that has no villages yet (a new one, or one made
/// by a release before the whole tree): part of migrating.
pub fn load_if_missing(conn: &mut DbConnection) -> AppResult<Option<Changes>> {
    let villages: i64 = regions::table.filter(regions::level.eq("village")).count().get_result(conn)?;
    if villages > 0 {
        return Ok(None);
    }
    let decree = Decree::shipped().map_err(AppError::internal)?;
    load(conn, &decree).map(Some)
}

/// Marks the regions of the service area `area` (province or regency codes, and everything
/// under them) as served, and no other; refuses a code that names no province or regency.
pub fn serve(conn: &mut DbConnection, area: &[String]) -> AppResult<()> {
    db::write(conn, |conn| {
        for code in area {
            let level: Option<String> = regions::table
                .find(code)
                .filter(regions::retired.eq(false))
                .select(regions::level)
                .first(conn)
                .optional()?;
            if !matches!(level.as_deref(), Some("province" | "regency")) {
                return Err(AppError::BadRequest(format!(
                    "SERVICE_AREA names {code}, which is no province or regency of /regions"
                )));
            }
        }
        diesel::update(regions::table.filter(regions::served.eq(true)))
            .set(regions::served.eq(false))
            .execute(conn)?;
        for code in area {
            diesel::update(
                regions::table.filter(regions::code.eq(code).or(regions::code.like(format!("{code}.%")))),
            )
            .set(regions::served.eq(true))
            .execute(conn)?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_case_accents_apostrophes_and_spaces() {
        assert_eq!(fold("Regapu’u"), "regapu'u");
        assert_eq!(fold("  Désa   SIDOMULYO "), "desa sidomulyo");
        assert_eq!(fold("Kota Bau-Bau"), "kota bau-bau");
    }

    #[test]
    fn the_shipped_decree_is_whole() {
        assert_eq!(Decree::shipped().map(|d| d.counts()), Ok([38, 514, 7_285, 83_762]));
    }

    #[test]
    fn a_malformed_decree_is_refused_with_its_row() {
        let files = |villages: &str| {
            [
                ("provinces.csv".into(), "code,name\n35,Jawa Timur\n".into()),
                ("regencies.csv".into(), "code,province_code,name\n35.24,35,Kabupaten Lamongan\n".into()),
                ("districts.csv".into(), "code,regency_code,name\n35.24.05,35.24,Babat\n".into()),
                ("villages.csv".into(), format!("code,district_code,name\n{villages}")),
            ]
        };
        assert!(Decree::parse(files("35.24.05.2001,35.24.05,Bedahan\n")).is_ok());
        for (villages, error) in [
            ("35.24.05.2001,35.24.06,Bedahan\n", "villages.csv, row 2: 35.24.05.2001's parent 35.24.06"),
            ("35.24.05,35.24.05,Bedahan\n", "villages.csv, row 2: 35.24.05 is not a village code"),
            ("35.24.05.2001,35.24.05,\n", "villages.csv, row 2: 35.24.05.2001 has no name"),
            (
                "35.24.05.2001,35.24.05,A\n35.24.05.2001,35.24.05,B\n",
                "villages.csv, row 3: 35.24.05.2001 is listed twice",
            ),
        ] {
            let err = Decree::parse(files(villages)).err().unwrap();
            assert!(err.starts_with(error), "{err}");
        }
    }
}
