package uploadspool

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/tus/tusd/v2/pkg/handler"

	"github.com/threadbox/threadbox/db"
)

// unlockChannel is the PostgreSQL notification channel on which a replica
// waiting for an upload's lock asks its holder, on whatever replica, to let
// go (tusd's requestUnlock: an interrupted PATCH stops and saves its bytes,
// so the client's HEAD or next PATCH can proceed).
const unlockChannel = "threadbox_upload_unlock"

// DefaultLockLease is how long an upload lock lasts without renewal; the
// holder renews it every third of that, so a replica that dies holding one
// blocks the upload for at most this long.
const DefaultLockLease = 15 * time.Second

// Locker is tusd's handler.Locker over PostgreSQL, for replicas sharing one
// spool: one lock row per upload (a lease renewed while held), and release
// requests delivered with LISTEN/NOTIFY.
type Locker struct {
	pool  *pgxpool.Pool
	lease time.Duration
	log   *slog.Logger

	mu      sync.Mutex
	holding map[string]func() // upload id → requestUnlock of the lock this process holds

	stop context.CancelFunc
	done chan struct{}
}

var _ handler.Locker = (*Locker)(nil)

// NewLocker starts listening for release requests; Close stops it.
func NewLocker(pool *pgxpool.Pool, lease time.Duration, log *slog.Logger) *Locker {
	if lease <= 0 {
		lease = DefaultLockLease
	}
	ctx, stop := context.WithCancel(context.Background())
	l := &Locker{pool: pool, lease: lease, log: log, holding: map[string]func(){}, stop: stop, done: make(chan struct{})}
	go l.listen(ctx)
	return l
}

// Close stops listening. Locks still held are released by their holders.
func (l *Locker) Close() {
	l.stop()
	<-l.done
}

// listen delivers release requests to this process's holders, reconnecting
// when its connection breaks (a request missed meanwhile only means the
// waiter waits for the holder to finish or for its own timeout).
func (l *Locker) listen(ctx context.Context) {
	defer close(l.done)
	for ctx.Err() == nil {
		err := l.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		l.log.Warn("upload lock listener lost its connection; reconnecting", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (l *Locker) listenOnce(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, l.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+unlockChannel); err != nil {
		return err
	}
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		l.mu.Lock()
		requestUnlock := l.holding[n.Payload]
		l.mu.Unlock()
		if requestUnlock != nil {
			requestUnlock()
		}
	}
}

// NewLock implements handler.Locker.
func (l *Locker) NewLock(id string) (handler.Lock, error) {
	return &lock{l: l, id: id, holder: uuid.NewString()}, nil
}

type lock struct {
	l      *Locker
	id     string
	holder string // this lock object's identity in the lock table
	stop   chan struct{}
	done   chan struct{}
}

// Lock implements handler.Lock: take the lock, or ask its holder to let go
// and wait (polling) until it does or ctx ends.
func (k *lock) Lock(ctx context.Context, requestUnlock func()) error {
	q := db.New(k.l.pool)
	var asked time.Time
	wait := 20 * time.Millisecond
	for {
		taken, err := q.TakeUploadLock(ctx, db.TakeUploadLockParams{UploadID: k.id, Holder: k.holder, LeaseSeconds: k.l.lease.Seconds()})
		if ctx.Err() != nil {
			return handler.ErrLockTimeout
		}
		if err != nil {
			return fmt.Errorf("taking the lock of upload %s: %w", k.id, err)
		}
		if taken {
			break
		}
		if time.Since(asked) >= time.Second { // ask again now and then: a listener may have reconnected
			if _, err := k.l.pool.Exec(ctx, "SELECT pg_notify($1, $2)", unlockChannel, k.id); err != nil && ctx.Err() == nil {
				k.l.log.Warn("asking an upload lock's holder to let go", "upload", k.id, "err", err)
			}
			asked = time.Now()
		}
		select {
		case <-ctx.Done():
			return handler.ErrLockTimeout
		case <-time.After(wait):
		}
		wait = min(2*wait, 250*time.Millisecond)
	}
	k.l.mu.Lock()
	k.l.holding[k.id] = requestUnlock
	k.l.mu.Unlock()
	k.stop, k.done = make(chan struct{}), make(chan struct{})
	go k.renew(requestUnlock)
	return nil
}

// renew extends the lease until Unlock. If the lease was lost (this process
// stalled past it and another holder took over), the request is asked to
// stop at once.
func (k *lock) renew(requestUnlock func()) {
	defer close(k.done)
	t := time.NewTicker(k.l.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), k.l.lease/3)
			n, err := db.New(k.l.pool).RenewUploadLock(ctx, db.RenewUploadLockParams{UploadID: k.id, Holder: k.holder, LeaseSeconds: k.l.lease.Seconds()})
			cancel()
			switch {
			case err != nil:
				k.l.log.Warn("renewing an upload lock failed", "upload", k.id, "err", err)
			case n == 0:
				k.l.log.Warn("an upload lock's lease was lost; stopping its request", "upload", k.id)
				requestUnlock()
				return
			}
		}
	}
}

// Unlock implements handler.Lock.
func (k *lock) Unlock() error {
	if k.stop == nil {
		return errors.New("uploadspool: unlock of a lock not held")
	}
	close(k.stop)
	<-k.done
	k.l.mu.Lock()
	delete(k.l.holding, k.id)
	k.l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := db.New(k.l.pool).ReleaseUploadLock(ctx, db.ReleaseUploadLockParams{UploadID: k.id, Holder: k.holder}); err != nil {
		return fmt.Errorf("releasing the lock of upload %s (its lease ends by itself): %w", k.id, err)
	}
	return nil
}
