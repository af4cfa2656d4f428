package threads

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/threadbox/threadbox/admission"
	"github.com/threadbox/threadbox/api/apierr"
	"github.com/threadbox/threadbox/api/httpio"
	"github.com/threadbox/threadbox/auth"
	"github.com/threadbox/threadbox/command"
	"github.com/threadbox/threadbox/config"
	"github.com/threadbox/threadbox/db"
	"github.com/threadbox/threadbox/entity"
	"github.com/threadbox/threadbox/guardcache"
	"github.com/threadbox/threadbox/sandbox"
)

// Routes serve /v1/threads: threads, exec, background commands, their files
// and leases. Every use of a thread's sandbox goes through Sandboxes.Use; the
// thread row (Queries) is the authority on whether a thread exists. Writes
// under the volume mount go through Volumes.
type Routes struct {
	Config    config.Config
	Queries   *db.Queries
	Sandboxes *sandbox.Client
	Volumes   VolumeViews
	Commands  *command.Service
	// Admission creates thread rows within the per-user thread limit.
	Admission *admission.Controller
	// Guards caches the guard's verdicts (nil: every use reads the row).
	Guards *guardcache.Cache
	Logger *slog.Logger
}

// Register adds the thread routes to the /v1 group.
func (t *Routes) Register(g *echo.Group) {
	g.POST("/threads", t.create)
	g.GET("/threads", t.list)
	g.GET("/threads/:id", t.get)
	g.DELETE("/threads/:id", t.delete)
	g.POST("/threads/:id/exec", t.exec)
	g.GET("/threads/:id/files", t.getFile)
	g.PUT("/threads/:id/files", t.putFile)
	g.DELETE("/threads/:id/files", t.deleteFile)
	g.POST("/threads/:id/files/move", t.moveFile)
	g.POST("/threads/:id/files/upload", t.uploadFiles)
	g.POST("/threads/:id/files/download", t.downloadFiles)
	g.POST("/threads/:id/commands", t.startCommand)
	g.GET("/threads/:id/commands", t.listCommands)
	g.GET("/threads/:id/commands/:cid", t.getCommand)
	g.DELETE("/threads/:id/commands/:cid", t.stopCommand)
	g.GET("/threads/:id/commands/:cid/output", t.commandOutput)
	g.POST("/threads/:id/commands/:cid/signal", t.signalCommand)
	g.POST("/threads/:id/leases", t.createLease)
	g.DELETE("/threads/:id/leases/:lease_id", t.releaseLease)
}

// principalOf is the caller (set by the API's authentication).
func principalOf(c echo.Context) auth.Principal {
	p, _ := auth.PrincipalFrom(c.Request().Context())
	return p
}

// threadIDPattern keeps thread ids safe in workflow ids ("thread:<user>:<id>"
// splits on the last colon), sandbox names, labels, URLs and logs.
var threadIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func validThreadID(id string) bool { return threadIDPattern.MatchString(id) }

// threadView is a thread as clients see it: the row, which the workflow keeps
// up to date on every lifecycle transition.
type threadView struct {
	ThreadID       string     `json:"thread_id"`
	State          string     `json:"state"`
	SandboxID      *string    `json:"sandbox_id"`
	Snapshot       *string    `json:"snapshot"`
	Generation     int32      `json:"generation"`
	LastActivityAt *time.Time `json:"last_activity_at"`
	AutoStopAt     *time.Time `json:"auto_stop_at"`
	AutoDeleteAt   *time.Time `json:"auto_delete_at"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`
}

func viewOf(t db.Thread) threadView {
	return threadView{
		ThreadID: t.ThreadID, State: t.State, SandboxID: t.SandboxID, Snapshot: t.Snapshot,
		Generation: t.Generation, LastActivityAt: t.LastActivityAt, AutoStopAt: t.AutoStopAt,
		AutoDeleteAt: t.AutoDeleteAt, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt,
	}
}

// errThreadNotFound is the answer for a thread that is missing, deleted or
// another user's: the three are indistinguishable on purpose.
func errThreadNotFound() *apierr.Error { return apierr.NotFound("thread not found") }

// threadRef reads and checks the :id parameter. A malformed id cannot name a
// thread, so it is a 404 like any other unknown thread.
func threadRef(c echo.Context) (entity.Ref, error) {
	id := c.Param("id")
	if !validThreadID(id) {
		return entity.Ref{}, errThreadNotFound()
	}
	return entity.Ref{Kind: entity.KindThread, UserID: principalOf(c).UserID, ThreadID: id}, nil
}

// liveThread returns the caller's thread row unless it is missing or deleted.
func (t *Routes) liveThread(ctx context.Context, ref entity.Ref) (db.Thread, error) {
	// A read: retried once on a fresh connection when PostgreSQL dropped
	// the first (a restart, a failover), so a blip costs no request.
	row, err := db.RetryRead(ctx, func(ctx context.Context) (db.Thread, error) {
		return t.Queries.APIGetThread(ctx, db.APIGetThreadParams{UserID: ref.UserID, ThreadID: ref.ThreadID})
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return db.Thread{}, errThreadNotFound()
	}
	if err != nil {
		return db.Thread{}, fmt.Errorf("reading thread: %w", err)
	}
	if row.State == string(entity.PhaseDeleted) {
		return db.Thread{}, errThreadNotFound()
	}
	return row, nil
}

// guard is the existence check the sandbox client runs before every use,
// cached ones included: a thread deleted through any replica answers 404 at
// once on every other, whose cached window the delete ended early. The
// row's created_at (reset when a deleted thread is created again) names the
// thread's life, so a window cached for an earlier life is not reused.
// One primary-key read per use; Temporal stays off the warm path.
// The verdict of a live thread is cached per replica (Guards): forgotten
// when PostgreSQL notifies a delete or a re-create, and trusted for at most
// guardcache.MaxStale in any case, so a warm exec reads no row at all.
func (t *Routes) guard(ref entity.Ref) func(context.Context) (string, error) {
	read := func(ctx context.Context) (string, error) {
		row, err := t.liveThread(ctx, ref)
		if err != nil {
			return "", err
		}
		return row.CreatedAt.UTC().Format(time.RFC3339Nano), nil
	}
	if t.Guards == nil {
		return read
	}
	return func(ctx context.Context) (string, error) {
		return t.Guards.Get(ctx, guardcache.Key(ref.UserID, ref.ThreadID), read)
	}
}

// forgetGuard drops this replica's cached verdict of ref at once (other
// replicas are told by PostgreSQL's notification).
func (t *Routes) forgetGuard(ref entity.Ref) {
	if t.Guards != nil {
		t.Guards.Forget(guardcache.Key(ref.UserID, ref.ThreadID))
	}
}

type createThreadRequest struct {
	ThreadID *string `json:"thread_id"`
}

// create is POST /v1/threads: insert or revive the row (within the thread
// limit), then make sure the sandbox runs (within the sandbox limits). 201 when this call created (or revived) the thread, 200 when
// it already existed, decided by the insert so concurrent creates agree.
func (t *Routes) create(c echo.Context) error {
	ctx := c.Request().Context()
	var req createThreadRequest
	if c.Request().ContentLength != 0 {
		if err := httpio.DecodeJSON(c, &req); err != nil {
			return err
		}
	}
	id := uuid.NewString()
	if req.ThreadID != nil {
		id = *req.ThreadID
		if !validThreadID(id) {
			return apierr.BadRequest("invalid_thread_id", "thread_id must be 1 to 64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit")
		}
	}
	ref := entity.Ref{Kind: entity.KindThread, UserID: principalOf(c).UserID, ThreadID: id}
	created, err := t.Admission.CreateThread(ctx, ref.UserID, id)
	if err != nil {
		return err
	}
	if created {
		t.Sandboxes.Forget(ref) // a revived thread must not reuse its last life's sandbox
		t.forgetGuard(ref)
	}
	var res entity.EnsureResult
	cached := false
	err = t.Sandboxes.Use(ctx, ref, sandbox.UseOptions{Guard: t.guard(ref)}, func(_ context.Context, sb *sandbox.Sandbox) error {
		res, cached = sb.Result, sb.Cached
		return nil
	})
	var refused *admission.Error
	if created && errors.As(err, &refused) {
		// No sandbox may start for it now: a refused create leaves no
		// thread behind (it would count against the thread limit).
		t.forgetGuard(ref)
		if _, derr := t.Queries.APIMarkThreadDeleted(context.WithoutCancel(ctx), db.APIMarkThreadDeletedParams{UserID: ref.UserID, ThreadID: id}); derr != nil {
			t.Logger.WarnContext(ctx, "undoing a refused thread create", "workflow_id", ref.WorkflowID(), "err", derr)
		}
	}
	if err != nil {
		return err
	}
	row, err := t.liveThread(ctx, ref)
	if err != nil {
		return err
	}
	v := viewOf(row)
	if v.State != string(entity.PhaseRunning) || v.SandboxID == nil || *v.SandboxID != res.SandboxID {
		// The row is written by the workflow's activities and may trail the
		// answer we hold; the sandbox is running now.
		v.State = string(entity.PhaseRunning)
		v.SandboxID = &res.SandboxID
		if res.Snapshot != "" {
			v.Snapshot = &res.Snapshot
		}
		v.Generation = int32(res.Generation)
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	if !cached && !res.AutoStopAt.IsZero() {
		// The workflow's own answer, given a moment ago, already holds what
		// a state query would return: no query (≈ 5 ms, a worker task).
		return c.JSON(status, withEnsureResult(v, res))
	}
	return c.JSON(status, t.withLiveState(ctx, ref, v))
}

// withEnsureResult is v with the live state an uncached ensure-running
// answered: the sandbox runs, last used and due to stop as the workflow said.
func withEnsureResult(v threadView, res entity.EnsureResult) threadView {
	lastUse, stopAt := res.LastUseAt.UTC(), res.AutoStopAt.UTC()
	v.State = string(entity.PhaseRunning)
	v.SandboxID, v.Generation = &res.SandboxID, int32(res.Generation)
	if res.Snapshot != "" {
		v.Snapshot = &res.Snapshot
	}
	if !lastUse.IsZero() {
		v.LastActivityAt = &lastUse
	}
	v.AutoStopAt, v.AutoDeleteAt = &stopAt, nil
	return v
}

type threadList struct {
	Threads []threadView `json:"threads"`
}

// list is GET /v1/threads[?include_deleted=true].
func (t *Routes) list(c echo.Context) error {
	includeDeleted := false
	if v := c.QueryParam("include_deleted"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return apierr.BadRequest("invalid_parameter", "include_deleted must be true or false")
		}
		includeDeleted = b
	}
	rows, err := t.Queries.APIListThreads(c.Request().Context(), db.APIListThreadsParams{UserID: principalOf(c).UserID, IncludeDeleted: includeDeleted})
	if err != nil {
		return fmt.Errorf("listing threads: %w", err)
	}
	out := threadList{Threads: make([]threadView, 0, len(rows))}
	for _, r := range rows {
		out.Threads = append(out.Threads, viewOf(r))
	}
	return c.JSON(http.StatusOK, out)
}

// get is GET /v1/threads/{id}.
func (t *Routes) get(c echo.Context) error {
	ref, err := threadRef(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	row, err := t.liveThread(ctx, ref)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, t.withLiveState(ctx, ref, viewOf(row)))
}

// withLiveState overlays the workflow's current state and deadlines on the
// row's. The row is written by a ledger activity after each transition, so
// it trails the workflow (an exec that recreated the sandbox has its answer
// before the row says so), and uses and leases move the deadlines in
// between; the workflow's state query is the authority. When the query
// cannot be answered (no run, Temporal slow), the row is returned as it is.
func (t *Routes) withLiveState(ctx context.Context, ref entity.Ref, v threadView) threadView {
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, ok, err := t.Sandboxes.State(qctx, ref)
	if err != nil || !ok {
		return v
	}
	at := func(tm time.Time) *time.Time {
		if tm.IsZero() {
			return nil
		}
		tm = tm.UTC()
		return &tm
	}
	if !st.LastUseAt.IsZero() {
		v.LastActivityAt = at(st.LastUseAt)
	}
	switch st.Phase {
	case entity.PhaseDeleted:
		// Auto-deleted: the thread lives on without a sandbox (a user
		// delete never gets here: the row says deleted first).
		v.State, v.SandboxID = string(entity.PhaseStopped), nil
	case entity.PhaseRunning, entity.PhaseStopped, entity.PhaseCreating, entity.PhaseError:
		v.State = string(st.Phase)
		if st.SandboxID != "" {
			id := st.SandboxID
			v.SandboxID, v.Generation = &id, int32(st.Generation)
			if st.Snapshot != "" {
				snap := st.Snapshot
				v.Snapshot = &snap
			}
		}
	}
	if st.Phase == entity.PhaseRunning || st.Phase == entity.PhaseStopped {
		v.AutoStopAt = at(st.AutoStopAt)
		v.AutoDeleteAt = at(st.AutoDeleteAt)
	}
	return v
}
