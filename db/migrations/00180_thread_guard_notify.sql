-- +goose Up
-- Notifies every serve replica when a thread's guard verdict changes (it is
-- deleted, created again with a new created_at, or its row removed), so a
-- replica's cache of verdicts (package guardcache) forgets it at once. The
-- channel and the payload (user_id '/' thread_id) are guardcache.Channel
-- and guardcache.Key. Other updates of a thread (its state while it runs and
-- stops, its deadlines) do not notify: they do not change the verdict.
-- +goose StatementBegin
CREATE FUNCTION threadbox_thread_guard_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('threadbox_thread_guard', OLD.user_id || '/' || OLD.thread_id);
        RETURN OLD;
    END IF;
    IF (NEW.state = 'deleted') <> (OLD.state = 'deleted') OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
        PERFORM pg_notify('threadbox_thread_guard', NEW.user_id || '/' || NEW.thread_id);
    END IF;
    RETURN NEW;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER threads_guard_notify
AFTER UPDATE OR DELETE ON threads
FOR EACH ROW EXECUTE FUNCTION threadbox_thread_guard_notify();

-- +goose Down
DROP TRIGGER threads_guard_notify ON threads;
DROP FUNCTION threadbox_thread_guard_notify();
