-- Trainings (pelatihan) and the businesses that register for them.

CREATE TABLE trainings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    theme TEXT,
    venue TEXT,
    starts_on DATE NOT NULL,
    ends_on DATE NOT NULL,
    capacity INTEGER NOT NULL CHECK (capacity > 0),
    registration_closes_at TIMESTAMP,
    selected_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    CHECK (ends_on >= starts_on)
);
CREATE INDEX trainings_starts_on ON trainings (starts_on, id);
CREATE INDEX trainings_updated_at ON trainings (updated_at, id);

CREATE TABLE registrations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    training_id BIGINT NOT NULL REFERENCES trainings (id) ON DELETE CASCADE,
    business_id BIGINT NOT NULL REFERENCES businesses (id) ON DELETE CASCADE,
    status TEXT NOT NULL CHECK (status IN ('registered', 'selected', 'waitlisted', 'rejected', 'attended')),
    registered_at TIMESTAMP NOT NULL,
    selection_rank INTEGER,
    note TEXT,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    UNIQUE (training_id, business_id)
);
CREATE INDEX registrations_training ON registrations (training_id, id);
CREATE INDEX registrations_business_status ON registrations (business_id, status);
