// Package pgsetup finds or starts the PostgreSQL server jobstream uses and
// makes sure its database exists, so that jobstream runs without Docker and
// without setup on any machine that has PostgreSQL installed.
//
// # Resolution order
//
// Resolve picks the first of:
//
//  1. "env": Config.DatabaseURL (DATABASE_URL), used as is.
//  2. "local", chosen: the server PGHOST and PGPORT point at (PGHOST is a
//     comma-separated list of hosts or socket directories; either variable
//     alone is enough). If it does not answer Resolve fails: the user asked
//     for that server, so it does not start a private cluster instead.
//  3. "embedded", existing: the private cluster in Config.DataDir, if one has
//     been initialised there (DataDir/pg/PG_VERSION exists). It is started if
//     it is not running. Once jobstream has put data in its own cluster it
//     keeps using it, even if a server later appears on the default port;
//     switching would make every job seem to vanish.
//  4. "local", found: a server already running on this machine, on port
//     5432 of the Unix sockets in /var/run/postgresql and /tmp, then of
//     127.0.0.1. A server that answers but refuses every user is skipped
//     (and logged).
//  5. "embedded", new: when the server binaries (initdb, pg_ctl, postgres)
//     are on PATH or in a package's usual place (/usr/lib/postgresql/*/bin,
//     highest version first; /usr/local/pgsql/bin; Homebrew's
//     opt/postgresql*/bin), a private cluster is initialised in DataDir/pg
//     and started.
//
// A local server is tried as $PGUSER, or else as the current OS user and
// then as "postgres". Each attempt gives up after 2 s.
//
// With none of these, Resolve returns an error that lists the ways out: set
// DATABASE_URL, start PostgreSQL, install the PostgreSQL server package, or
// run docker compose. Whatever the source, Resolve then creates the database
// if it is missing (EnsureDatabase).
//
// # The private cluster
//
// DataDir holds the cluster (pg/), its log (pg.log), a lock file
// (setup.lock) that serialises processes setting it up at once, and the
// server's Unix socket. The server listens only on that socket, on port
// 5432, and never on TCP, so it cannot collide with another server. It is
// initialised with trust authentication for the superuser "jobstream"; this
// is safe only because DataDir is kept at mode 0700, so nobody but the
// cluster's owner (and root) can reach the socket.
//
// PostgreSQL refuses to run as root. When jobstream runs as root, initdb and
// pg_ctl run as the owner of an existing cluster, else as user "postgres",
// else as "nobody"; DataDir is given to that user. The default DataDir for
// root is /var/lib/jobstream (unless a cluster already lives in root's
// home), which that user can reach: a DataDir under root's home (mode 0700)
// would need the home directory opened up. For an explicit DataDir, any
// parent directory that user cannot traverse gets the matching execute bit,
// with a warning (Config.Warnf). Resolve will not give away a DataDir that
// holds files other than its own.
//
// # Lifecycle
//
// The cluster keeps running when jobstream exits, so the next start is
// instant. `jobstream db` drives it: Choose says which server Resolve
// would use and why (Result.Why, Result.Hint, also logged by Resolve),
// ClusterStatus reports the cluster's state and postmaster pid,
// StartCluster starts it (after which it wins over a local server), and
// StopCluster stops it and waits for the postmaster to exit. Result.Stop,
// set only when Resolve started the cluster, is for tests.
package pgsetup
