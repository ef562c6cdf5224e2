//! The owners of generated businesses: persons, their NIK, phone and e-mail sealed as the API
//! seals them.

use chrono::NaiveDateTime;

use super::SeedError;
use super::rows::{BusinessRow, ConsentRow, PersonRow};
use super::seeder::{Seeder, take};
use crate::crypto::keyring::KeyError;
use crate::persons::consents::BANK_SHARING;
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
        self.last_consent = None;
        Ok(id)
    }

    /// `business` (of the person made last) as its owner's: with its copy of the person's
    /// fields, and their consent.
    pub(super) fn owned(&mut self, business: BusinessRow) -> BusinessRow {
        let mut business = self.with_owner_consent(business);
        if let Some(person) = self.persons.iter().rev().find(|p| p.id == business.owner_id) {
            self.last_copy =
                Some((person.name.clone(), person.nik.clone(), person.phone.clone(), person.email.clone()));
        }
        if let Some((name, nik, phone, email)) = &self.last_copy {
            business.person_name = name.clone();
            business.person_nik = nik.clone();
            business.person_phone = phone.clone();
            business.person_email = email.clone();
        }
        business
    }

    /// `business` (of the person made last) with its owner's consent: the consent its
    /// generated fields chose, for the person's first business (recorded as their consent to
    /// every bank, on a paper form), and the person's for the others.
    fn with_owner_consent(&mut self, mut business: BusinessRow) -> BusinessRow {
        match self.last_consent {
            Some(decided) => business.consented_to_bank_sharing_at = decided,
            None => {
                let given = business.consented_to_bank_sharing_at;
                self.last_consent = Some(given);
                if let Some(at) = given {
                    self.consents.push(ConsentRow {
                        person_id: business.owner_id,
                        purpose: BANK_SHARING,
                        bank_partner_id: None,
                        channel: "paper_form",
                        evidence: format!("FORM-{}/{:06}", at.format("%Y"), business.owner_id),
                        text_version: "persetujuan-bank-v1",
                        given_at: at,
                        recorded_by: None,
                        recorded_at: at,
                    });
                }
            }
        }
        business
    }
}
