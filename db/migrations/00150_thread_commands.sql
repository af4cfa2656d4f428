-- +goose Up
-- Background commands of threads (api/threads/commands.go, package command):
-- one row per command started with POST /v1/threads/{id}/commands or a
-- streamed exec. The row is what survives an API restart: where the command
-- runs (the sandbox, the Daytona session named after command_id and the
-- command Daytona gave it) and, once it ended, how it ended and its output
-- (at most THREADBOX_EXEC_OUTPUT_LIMIT bytes; Daytona's log goes with the
-- session, which is deleted then). A command belongs to one life of its
-- thread: rows started before the thread's created_at (a deleted and
-- re-created thread) are never shown.
CREATE TABLE thread_commands (
    user_id            text NOT NULL,
    thread_id          text NOT NULL,
    command_id         text NOT NULL,
    command            text NOT NULL,
    cwd                text,
    timeout_s          integer NOT NULL CHECK (timeout_s > 0),
    sandbox_id         text NOT NULL,
    daytona_command_id text NOT NULL,
    state              text NOT NULL CHECK (state IN ('running', 'exited', 'timed_out', 'killed', 'lost')),
    exit_code          bigint,
    output             bytea,
    truncated          boolean NOT NULL DEFAULT false,
    -- set by a stop (DELETE): the end it leads to is reported as 'killed'
    stop_requested     boolean NOT NULL DEFAULT false,
    started_at         timestamptz NOT NULL DEFAULT now(),
    -- started_at + timeout_s: the sandbox ends the command by then
    deadline_at        timestamptz NOT NULL,
    finished_at        timestamptz,
    PRIMARY KEY (user_id, thread_id, command_id)
);

CREATE INDEX thread_commands_started_idx ON thread_commands (user_id, thread_id, started_at);

-- +goose Down
DROP TABLE thread_commands;
