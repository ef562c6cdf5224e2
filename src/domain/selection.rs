//! Who gets a seat in a training when more businesses register than it has places.
//!
//! The rule, in order of precedence:
//! 1. micro businesses (`scale = mikro`) before the others, since the office's coaching is
//!    aimed at them;
//! 2. businesses that have never attended a training before those that have;
//! 3. earlier registration before later;
//! 4. lower registration id (a stable tie-break).
//!
//! The first `capacity` candidates are selected and the rest waitlisted. The rule depends only
//! on its inputs, so running it twice gives the same result.

use std::cmp::Ordering;

use chrono::NaiveDateTime;

/// A registration that takes part in the selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The registration.
    pub registration_id: i64,
    /// The business is mikro under PP 7/2021.
    pub micro: bool,
    /// The business attended another training before.
    pub trained_before: bool,
    /// When it registered.
    pub registered_at: NaiveDateTime,
}

/// The outcome for one registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Has a seat.
    Selected,
    /// Next in line if a seat frees up.
    Waitlisted,
}

fn precedence(a: &Candidate, b: &Candidate) -> Ordering {
    b.micro
        .cmp(&a.micro)
        .then(a.trained_before.cmp(&b.trained_before))
        .then(a.registered_at.cmp(&b.registered_at))
        .then(a.registration_id.cmp(&b.registration_id))
}

/// Ranks the candidates (1 = first) and fills `capacity` seats.
pub fn select(mut candidates: Vec<Candidate>, capacity: usize) -> Vec<(i64, Outcome, i32)> {
    candidates.sort_by(precedence);
    candidates
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let outcome = if i < capacity { Outcome::Selected } else { Outcome::Waitlisted };
            (c.registration_id, outcome, i32::try_from(i + 1).unwrap_or(i32::MAX))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minute: u32) -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2021, 9, 1).unwrap().and_hms_opt(8, minute, 0).unwrap()
    }

    fn candidate(id: i64, micro: bool, trained_before: bool, minute: u32) -> Candidate {
        Candidate { registration_id: id, micro, trained_before, registered_at: at(minute) }
    }

    #[test]
    fn micro_then_untrained_then_earliest() {
        let candidates = vec![
            candidate(1, false, false, 0),
            candidate(2, true, true, 1),
            candidate(3, true, false, 5),
            candidate(4, true, false, 2),
            candidate(5, false, false, 3),
        ];
        let result = select(candidates, 3);
        let order: Vec<i64> = result.iter().map(|r| r.0).collect();
        assert_eq!(order, [4, 3, 2, 1, 5]);
        let selected: Vec<i64> = result.iter().filter(|r| r.1 == Outcome::Selected).map(|r| r.0).collect();
        assert_eq!(selected, [4, 3, 2]);
        assert_eq!(result.iter().map(|r| r.2).collect::<Vec<_>>(), [1, 2, 3, 4, 5]);
    }

    #[test]
    fn the_same_input_gives_the_same_result_and_ties_break_by_id() {
        let candidates: Vec<Candidate> =
            (1..=234).rev().map(|id| candidate(id, id % 3 == 0, id % 7 == 0, 0)).collect();
        let first = select(candidates.clone(), 100);
        let mut shuffled = candidates;
        shuffled.rotate_left(77);
        assert_eq!(select(shuffled, 100), first);
        assert_eq!(first.iter().filter(|r| r.1 == Outcome::Selected).count(), 100);
        assert_eq!(first.iter().filter(|r| r.1 == Outcome::Waitlisted).count(), 134);
    }

    #[test]
    fn fewer_candidates_than_seats_are_all_selected() {
        let result = select(vec![candidate(1, false, true, 0)], 100);
        assert_eq!(result, [(1, Outcome::Selected, 1)]);
        assert!(select(Vec::new(), 10).is_empty());
    }
}
