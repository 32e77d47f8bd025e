# Sourced by test.sh: makes sure a local PostgreSQL (Debian package) runs and has the test role and
# database, then exports PCS_TEST_POSTGRES_URL for the central server's tests. The clusters it had to
# start are listed in PCS_PG_STARTED; pg_stop_started_clusters stops them again (test.sh does on exit),
# so a cluster that was already running is left running.
# Needs root or sudo for apt and for starting the cluster. Set PCS_TEST_POSTGRES_URL yourself to use
# another server (the script then does nothing).
if [ -z "${PCS_TEST_POSTGRES_URL:-}" ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    if ! command -v pg_lsclusters >/dev/null 2>&1; then
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql
    fi
    if [ -z "$(pg_lsclusters -h 2>/dev/null)" ]; then
        PGVER=$(ls /usr/lib/postgresql | sort -n | tail -1)
        $SUDO pg_createcluster "$PGVER" main >/dev/null
    fi
    # PCS_PG_STARTED: the clusters this script started ("ver/name ..."), for pg_stop_started_clusters
    PCS_PG_STARTED=""
    while read -r ver name port status rest; do
        case "$status" in
            online*) ;;
            *) $SUDO pg_ctlcluster "$ver" "$name" start && PCS_PG_STARTED="$PCS_PG_STARTED $ver/$name" ;;
        esac
    done < <(pg_lsclusters -h)
    PGPORT=$(pg_lsclusters -h | head -1 | awk '{print $3}')
    psql_admin() { $SUDO -u postgres psql -p "$PGPORT" -v ON_ERROR_STOP=1 -qtA "$@"; }
    if [ "$(id -u)" -eq 0 ]; then psql_admin() { runuser -u postgres -- psql -p "$PGPORT" -v ON_ERROR_STOP=1 -qtA "$@"; }; fi
    (cd /tmp && {
        [ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname='pcs_test'")" = "1" ] ||
            psql_admin -c "CREATE ROLE pcs_test LOGIN PASSWORD 'pcs_test' CREATEDB"
        # DROP DATABASE ... WITH (FORCE) of a test database terminates its other sessions; on
        # PostgreSQL 15 that includes an autovacuum worker, which only pg_signal_backend may end
        [ "$(psql_admin -c "SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE r.rolname = 'pg_signal_backend' AND u.rolname = 'pcs_test'")" = "1" ] ||
            psql_admin -c "GRANT pg_signal_backend TO pcs_test"
        [ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname='pcs_test'")" = "1" ] ||
            psql_admin -c "CREATE DATABASE pcs_test OWNER pcs_test"
    })
    export PCS_TEST_POSTGRES_URL="postgresql+psycopg://pcs_test:pcs_test@127.0.0.1:${PGPORT}/pcs_test"
    export PCS_REQUIRE_POSTGRES=1
fi

pg_stop_started_clusters() {
    local c SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    for c in ${PCS_PG_STARTED:-}; do
        $SUDO pg_ctlcluster "${c%%/*}" "${c#*/}" stop || true
    done
    PCS_PG_STARTED=""
}
