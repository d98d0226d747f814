#!/bin/sh
# Initialise the cluster on first start, then run postgres in the foreground.
set -eu
BIN=$(ls -d /usr/lib/postgresql/*/bin | tail -n 1)
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  install -d -o postgres -g postgres -m 700 "$PGDATA"
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  chown postgres "$pwfile"
  su postgres -c "$BIN/initdb -D $PGDATA -U postgres --auth=scram-sha-256 --pwfile=$pwfile" >/dev/null
  rm -f "$pwfile"
  echo "host all all 0.0.0.0/0 scram-sha-256" >>"$PGDATA/pg_hba.conf"
fi
install -d -o postgres -g postgres /var/run/postgresql
exec su postgres -c "exec $BIN/postgres -D $PGDATA -c listen_addresses=* $*"
