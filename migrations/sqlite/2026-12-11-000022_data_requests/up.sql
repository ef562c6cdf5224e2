-- Data subjects' requests (issue 30, UU 27/2022 Pasal 32-44): each right a person exercises is
-- recorded with when it was received and through which channel, and must be answered within
-- 3 x 24 hours (due_at). States: received -> in_progress -> done | refused (with a reason);
-- received may go straight to done or refused. Never deleted.
CREATE TABLE data_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    person_id BIGINT NOT NULL REFERENCES persons (id),
    kind TEXT NOT NULL CHECK (kind IN ('access', 'correction', 'restriction', 'erasure', 'objection', 'consent_withdrawal')),
    channel TEXT NOT NULL CHECK (channel IN ('in_person', 'letter', 'email', 'phone', 'web')),
    received_at TIMESTAMP NOT NULL,
    due_at TIMESTAMP NOT NULL,
    status TEXT NOT NULL DEFAULT 'received' CHECK (status IN ('received', 'in_progress', 'done', 'refused')),
    refusal_reason TEXT,
    note TEXT,
    recorded_by BIGINT REFERENCES users (id),
    closed_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    CHECK ((status = 'refused') = (refusal_reason IS NOT NULL)),
    CHECK ((status IN ('done', 'refused')) = (closed_at IS NOT NULL))
);
-- The open requests by deadline (the overdue list), and a person's requests.
CREATE INDEX data_requests_open_due ON data_requests (due_at, id) WHERE status IN ('received', 'in_progress');
CREATE INDEX data_requests_person ON data_requests (person_id, id);
