package pgtest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskerops/tasker/orchestration/migrate"
)

// templateNamePrefix starts the name of every template database; the first 12
// hex digits of the schema fingerprint follow.
const templateNamePrefix = "tasker_tpl_"

// templateLockKey is the advisory lock under which a template is built, so
// that test processes sharing a server build each template once: the first
// 8 bytes of sha256("tasker.pgtest.template") with the top bit cleared.
// (The migrator's own lock has another key.)
const templateLockKey int64 = 0x56db652e33091e62

// schema is a set of migrations test databases start from.
type schema struct {
	// fingerprint identifies the migrations; a template is built once per
	// fingerprint and server.
	fingerprint string
	// apply migrates the database pool connects to.
	apply func(ctx context.Context, pool *pgxpool.Pool) error
}

// loadTaskerSchema returns tasker's embedded migrations as a schema, loading
// them once per process.
var loadTaskerSchema = sync.OnceValues(func() (schema, error) {
	migrator, err := migrate.New()
	if err != nil {
		return schema{}, fmt.Errorf("loading tasker's migrations: %w", err)
	}
	apply := func(ctx context.Context, pool *pgxpool.Pool) error {
		_, err := migrator.Up(ctx, pool)
		return err
	}
	return schema{fingerprint: migrator.Fingerprint(), apply: apply}, nil
})

// templateBuild is the building of one template in this process.
type templateBuild struct {
	once sync.Once
	name string
	err  error
}

// migratedTemplate returns the template database holding tasker's latest
// schema, building it first if the server does not have it yet.
func (s *server) migratedTemplate(ctx context.Context) (string, error) {
	sch, err := loadTaskerSchema()
	if err != nil {
		return "", err
	}
	return s.template(ctx, sch)
}

// template returns the name of the template database of sch, building it on
// the first call for sch's fingerprint.
func (s *server) template(ctx context.Context, sch schema) (string, error) {
	s.mu.Lock()
	build, ok := s.templates[sch.fingerprint]
	if !ok {
		build = &templateBuild{name: templateName(sch.fingerprint)}
		s.templates[sch.fingerprint] = build
	}
	s.mu.Unlock()
	build.once.Do(func() { build.err = s.ensureTemplate(ctx, build.name, sch) })
	return build.name, build.err
}

// templateName returns the template database name of a schema fingerprint.
func templateName(fingerprint string) string {
	return templateNamePrefix + fingerprint[:min(12, len(fingerprint))]
}

// ensureTemplate makes sure the server has a complete template database
// called name holding sch. A template is complete once marked IS_TEMPLATE,
// the last step of building it; an incomplete one (a build that failed
// half-way) is dropped and built again. The check and the build run under an
// advisory lock held by a connection of their own, so the lock goes with it
// whatever happens.
func (s *server) ensureTemplate(ctx context.Context, name string, sch schema) error {
	conn, err := pgx.Connect(ctx, s.adminURL)
	if err != nil {
		return fmt.Errorf("building template %s: %w", name, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLockKey); err != nil {
		return fmt.Errorf("building template %s: locking: %w", name, err)
	}
	complete, exists, err := templateState(ctx, conn, name)
	if err != nil || complete {
		return err
	}
	if exists {
		if _, err := conn.Exec(ctx, "DROP DATABASE "+quote(name)+" WITH (FORCE)"); err != nil {
			return fmt.Errorf("dropping incomplete template %s: %w", name, err)
		}
	}
	return s.buildTemplate(ctx, conn, name, sch)
}

// templateState reports whether database name exists and whether it is a
// complete template.
func templateState(ctx context.Context, conn *pgx.Conn, name string) (complete, exists bool, err error) {
	err = conn.QueryRow(ctx, "SELECT datistemplate FROM pg_database WHERE datname = $1", name).Scan(&complete)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return false, false, nil
	case err != nil:
		return false, false, fmt.Errorf("looking up template %s: %w", name, err)
	}
	return complete, true, nil
}

// buildTemplate creates database name, applies sch to it, closes every
// connection to it and marks it as a template that accepts no connections
// (CREATE DATABASE … TEMPLATE needs the template to be idle).
func (s *server) buildTemplate(ctx context.Context, conn *pgx.Conn, name string, sch schema) error {
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+quote(name)); err != nil {
		return fmt.Errorf("creating template %s: %w", name, err)
	}
	pool, err := pgxpool.New(ctx, databaseURL(s.adminURL, name))
	if err != nil {
		return fmt.Errorf("migrating template %s: %w", name, err)
	}
	err = sch.apply(ctx, pool)
	pool.Close()
	if err != nil {
		return fmt.Errorf("migrating template %s: %w", name, err)
	}
	_, err = conn.Exec(ctx, "ALTER DATABASE "+quote(name)+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
	if err != nil {
		return fmt.Errorf("marking template %s: %w", name, err)
	}
	return nil
}
