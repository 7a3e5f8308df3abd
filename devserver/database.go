package devserver

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	enums "go.temporal.io/api/enums/v1"
	"go.temporal.io/server/common/config"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	sqliteschema "go.temporal.io/server/schema/sqlite"
	"google.golang.org/protobuf/types/known/durationpb"
)

const (
	// clusterName is the name of the single local cluster.
	clusterName = "active"
	// namespaceRetention is how long closed workflows of a namespace created
	// by Start stay visible.
	namespaceRetention = 7 * 24 * time.Hour
)

// sqliteConfig returns the persistence config of the SQLite file at path.
// mode=rwc opens it read-write and creates it if missing.
func sqliteConfig(path string) *config.SQL {
	return &config.SQL{
		PluginName:        sqliteplugin.PluginName,
		DatabaseName:      path,
		ConnectAttributes: map[string]string{"mode": "rwc"},
	}
}

// prepareDatabase makes sure a SQLite file with the Temporal schema exists at
// path and reports whether it created it. The schema is built in a scratch
// file that is renamed into place once complete, so a start interrupted
// during setup never leaves a half-initialized database behind.
func prepareDatabase(conf *config.SQL, path string) (created bool, err error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("devserver: stat database: %w", err)
	}

	// Leftovers of an interrupted setup. The scratch name is new on every
	// attempt because the SQLite plugin caches connections by file name for
	// the life of the process.
	stale, _ := filepath.Glob(path + ".setup-*")
	for _, f := range stale {
		_ = os.Remove(f)
	}
	scratch := path + ".setup-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	scratchConf := *conf
	scratchConf.DatabaseName = scratch
	scratchConf.ConnectAttributes = map[string]string{"mode": "rwc"}
	if err := sqliteschema.SetupSchema(&scratchConf); err != nil {
		_ = os.Remove(scratch)
		return false, fmt.Errorf("devserver: set up Temporal schema: %w", err)
	}
	if err := os.Rename(scratch, path); err != nil {
		_ = os.Remove(scratch)
		return false, fmt.Errorf("devserver: install database: %w", err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return false, fmt.Errorf("devserver: install database: %w", err)
	}
	return true, nil
}

// syncDir fsyncs a directory so that a rename inside it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// createNamespace registers namespace directly in the database unless it
// exists. Doing it before the server starts means the namespace is in the
// server's namespace cache from the first request on. Search attributes are
// only applied here to a new namespace; see ensureSearchAttributes.
func createNamespace(conf *config.SQL, namespace string, attrs map[string]enums.IndexedValueType) error {
	ns, err := sqliteschema.NewNamespaceConfig(clusterName, namespace, false, attrs)
	if err != nil {
		return fmt.Errorf("devserver: namespace %q: %w", namespace, err)
	}
	ns.Detail.Config.Retention = durationpb.New(namespaceRetention)
	if err := sqliteschema.CreateNamespaces(conf, ns); err != nil {
		return fmt.Errorf("devserver: %w", err)
	}
	return nil
}
