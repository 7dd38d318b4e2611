-- PostgreSQL twin of sqlite/0005_sealed_args.sql: a job's args lose their "sealed" key (a Fernet
-- token with upload credentials) in the statement that settles the job, whatever path settles it.
-- SQLite fires AFTER the row is written and updates it again; here a BEFORE row trigger edits NEW,
-- which stores the same row in one write. It fires for the same statements: an UPDATE whose SET
-- names status (UPDATE OF status, as in SQLite) or an INSERT, when the new status is settled.
--
-- args is text (see 0001). The key goes through jsonb, and args is rewritten only when the key is
-- there (json_type(args, '$.sealed') IS NOT NULL in SQLite: an object with that key, whatever its
-- value, JSON null included), so every other row keeps its text byte for byte. PostgreSQL's JSON
-- parser rejects the escape \u0000 (upstream's 009 problem), which SQLite accepts: each such escape
-- is swapped for a marker before parsing and back after, so such a job still settles.
-- Backslashes below are literal: standard_conforming_strings is on (the default since 9.1).
CREATE FUNCTION jobs_drop_sealed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    doc    text := NEW.args;
    marker text;
    prev   text;
    parsed jsonb;
BEGIN
    IF strpos(doc, '\u0000') > 0 THEN
        -- A marker that cannot already be in the text: it would have to hold its own md5.
        marker := 'osbuildd-nul-' || md5(doc);
        -- An escape is \u0000 behind an even run of backslashes (\\u0000 is a backslash and
        -- "u0000"). One pass cannot take two adjacent escapes, hence the loop.
        LOOP
            prev := doc;
            doc := regexp_replace(doc, '(^|[^\\])((\\\\)*)\\u0000', '\1\2' || marker, 'g');
            EXIT WHEN doc = prev;
        END LOOP;
    END IF;
    parsed := doc::jsonb;
    -- -> gives SQL NULL for a missing key and for a non-object, as json_type does.
    IF parsed -> 'sealed' IS NULL THEN
        RETURN NEW;
    END IF;
    doc := (parsed - 'sealed')::text;
    IF marker IS NOT NULL THEN
        doc := replace(doc, marker, '\u0000');
    END IF;
    NEW.args := doc;
    RETURN NEW;
END
$$;

CREATE TRIGGER jobs_drop_sealed_on_settle BEFORE UPDATE OF status ON jobs
    FOR EACH ROW WHEN (NEW.status IN ('finished', 'canceled'))
    EXECUTE FUNCTION jobs_drop_sealed();

CREATE TRIGGER jobs_drop_sealed_on_insert BEFORE INSERT ON jobs
    FOR EACH ROW WHEN (NEW.status IN ('finished', 'canceled'))
    EXECUTE FUNCTION jobs_drop_sealed();
