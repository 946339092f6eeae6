package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taskerops/tasker/internal/pgcluster"
)

// startTimeout bounds choosing the server: starting a cluster, or reaching
// the server of DatabaseURLEnv.
const startTimeout = time.Minute

// server is the PostgreSQL server the test process creates databases on.
type server struct {
	// adminURL is the connection URL of the administrative database; test
	// database URLs are derived from it.
	adminURL string
	// admin is a pool on adminURL that creates and drops databases.
	admin *pgxpool.Pool
	// cluster is the cluster this process started, nil when the server is
	// external.
	cluster *pgcluster.Cluster
	// fileCopy is whether CREATE DATABASE takes STRATEGY FILE_COPY
	// (PostgreSQL 15 and later). Copying the files is several times faster for
	// small databases than the default, which writes them all to the WAL.
	fileCopy bool

	// templates maps a schema fingerprint to its template database.
	mu        sync.Mutex
	templates map[string]*templateBuild
}

// shared is the process's server, chosen on first use. It is process state
// because Main and NewDatabase are called from independent tests.
var shared struct {
	once sync.Once
	srv  *server
	err  error
}

// sharedServer returns the process's server, choosing it on first call.
func sharedServer() (*server, error) {
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		defer cancel()
		shared.srv, shared.err = selectServer(ctx, os.Getenv(DatabaseURLEnv))
	})
	return shared.srv, shared.err
}

// shutdown releases the process's server, stopping its cluster if this
// process started one. It does nothing when no test used a database.
func shutdown() error {
	if shared.srv == nil {
		return nil
	}
	return shared.srv.close()
}

// selectServer connects to the server at externalURL, or, when it is empty,
// starts a cluster (not durable) and connects to that.
func selectServer(ctx context.Context, externalURL string) (*server, error) {
	if externalURL != "" {
		return connectServer(ctx, externalURL, nil)
	}
	cluster, err := pgcluster.Start(ctx, pgcluster.Config{})
	if err != nil {
		return nil, err
	}
	srv, err := connectServer(ctx, cluster.URL("postgres"), cluster)
	if err != nil {
		return nil, errors.Join(err, cluster.Stop())
	}
	return srv, nil
}

// connectServer opens the administrative pool on adminURL and checks that
// the server answers.
func connectServer(ctx context.Context, adminURL string, cluster *pgcluster.Cluster) (*server, error) {
	admin, err := pgxpool.New(ctx, adminURL)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", redact(adminURL), err)
	}
	var version int
	if err := admin.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		admin.Close()
		return nil, fmt.Errorf("connecting to %s: %w", redact(adminURL), err)
	}
	return &server{
		adminURL:  adminURL,
		admin:     admin,
		cluster:   cluster,
		fileCopy:  version >= 150000,
		templates: map[string]*templateBuild{},
	}, nil
}

// close closes the administrative pool and stops the cluster, if any.
func (s *server) close() error {
	s.admin.Close()
	if s.cluster == nil {
		return nil
	}
	return s.cluster.Stop()
}

// databaseURL returns adminURL with its database replaced by name. adminURL
// is a postgres:// URL or a keyword/value connection string.
func databaseURL(adminURL, name string) string {
	u, err := url.Parse(adminURL)
	if err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		u.Path, u.RawPath = "/"+name, ""
		return u.String()
	}
	// In a keyword/value string the last occurrence of a keyword wins.
	return adminURL + " dbname=" + name
}

// redact returns a URL without its password, for error messages.
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return "the database server"
	}
	return u.Redacted()
}
