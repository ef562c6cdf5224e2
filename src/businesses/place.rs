//! Where a business lies: its district in the service area, its village a village of that
//! district (`crate::regions`), checked with the other fields into one 422.

use diesel::QueryResult;

use super::input::{BusinessColumns, Checked};
use crate::db::DbConnection;
use crate::http::input::Check;
use crate::regions::villages::Villages;

pub(super) fn district_exists(conn: &mut DbConnection, code: &str, check: &mut Check) -> QueryResult<()> {
    if !crate::regions::is_district(conn, code)? {
        check.fail("district_code", "not_found", "no district has this code in /regions");
    }
    Ok(())
}

/// Settles a checked business's village against its district (`crate::regions::villages`):
/// a code of another district, or of no village, is a 422 on `village_code`.
pub(super) fn settle_village(
    conn: &mut DbConnection,
    checked: &mut Checked,
    check: &mut Check,
) -> QueryResult<()> {
    let Some(record) = checked.record.as_mut() else { return Ok(()) };
    let villages = {
        let (district, code, _) = record.columns.village_parts();
        let codes: Vec<&str> = code.as_deref().into_iter().collect();
        Villages::of(conn, &[district], &codes)?
    };
    settle_with(&villages, &mut record.columns, check);
    Ok(())
}

/// [`settle_village`] with the villages at hand (an import loads them once).
pub(super) fn settle_with(villages: &Villages, columns: &mut BusinessColumns, check: &mut Check) {
    let (district, code, text) = columns.village_parts();
    match villages.settle(district, code.as_deref(), text.as_deref()) {
        Ok((settled_code, settled_text)) => (*code, *text) = (settled_code, settled_text),
        Err((slug, message)) => check.fail("village_code", slug, message),
    }
}

/// A change that sends the village as text alone has it matched anew ([`settle_village`]): the
/// code read stays only with the text it was read with.
pub(super) fn rematch_text_alone(patch: &mut serde_json::Value) {
    if let Some(fields) = patch.as_object_mut()
        && fields.contains_key("village")
        && !fields.contains_key("village_code")
    {
        fields.insert("village_code".into(), serde_json::Value::Null);
    }
}
