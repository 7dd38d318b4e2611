-- Sealed job data (osbuildd/sealing.py): a job's args may carry "sealed", a Fernet token with the
-- upload credentials of its targets. It is needed only while the job can still run, so the row
-- loses it in the same statement that settles the job: finish, failure, cancel, dependency
-- failure, crash recovery ("interrupted"), a missing heartbeat, or a job inserted already settled.
-- A trigger, not code at each of those places: no later path that settles a job can forget it.
CREATE TRIGGER jobs_drop_sealed_on_settle AFTER UPDATE OF status ON jobs
WHEN NEW.status IN ('finished', 'canceled') AND json_type(NEW.args, '$.sealed') IS NOT NULL
BEGIN
    UPDATE jobs SET args = json_remove(args, '$.sealed') WHERE seq = NEW.seq;
END;

CREATE TRIGGER jobs_drop_sealed_on_insert AFTER INSERT ON jobs
WHEN NEW.status IN ('finished', 'canceled') AND json_type(NEW.args, '$.sealed') IS NOT NULL
BEGIN
    UPDATE jobs SET args = json_remove(args, '$.sealed') WHERE seq = NEW.seq;
END;
