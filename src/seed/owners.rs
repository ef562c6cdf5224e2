//! The owners of generated businesses: persons, their NIK, phone and e-mail sealed as the API
//! seals them.

use chrono::NaiveDateTime;

use super::SeedError;
use super::rows::PersonRow;
use super::seeder::{Seeder, take};
use crate::crypto::keyring::KeyError;
use crate::persons::{EMAIL, NIK, NIK_INDEX, PHONE};

impl Seeder {
    /// The owner of the next business in `district`, made at `at`: mostly a new person (born
    /// there), else (`again`) the owner of the previous business, so that some persons own
    /// several businesses. Their NIK, phone and e-mail are sealed as the API seals them.
    pub(super) fn owner(&mut self, district: &str, at: NaiveDateTime, again: bool) -> Result<i64, SeedError> {
        if again && let Some(last) = self.last_person {
            return Ok(last);
        }
        let id = take(&mut self.ids.person);
        let sealing = |e: KeyError| SeedError::Keys(e.to_string());
        let (person, nik_index) = loop {
            let person = self.faker.person(id, district);
            let nik_index = self.keys.blind_index(NIK_INDEX, &person.nik).map_err(sealing)?;
            if self.nik_indexes.insert(nik_index.clone()) {
                break (person, nik_index);
            }
        };
        let keys = &self.keys;
        self.persons.push(PersonRow {
            id,
            name: person.name,
            nik: keys.seal(NIK, &person.nik).map_err(sealing)?,
            nik_index,
            phone: keys.seal(PHONE, &person.phone).map_err(sealing)?,
            email: person.email.map(|e| keys.seal(EMAIL, &e)).transpose().map_err(sealing)?,
            created_at: at,
            updated_at: at,
            version: 1,
        });
        self.last_person = Some(id);
        Ok(id)
    }
}
