#!/usr/bin/env bash
# One-shot setup of the compose Elasticsearch, run inside the Elasticsearch image as root.
#   certs  make a CA and the node certificate (once; kept in the `certs` volume)
#   users  set the kibana_system password and create the least-privilege `newswire` user
# Every wait is bounded: a stack that cannot come up fails this job instead of hanging.
set -euo pipefail

CERTS=${CERTS:-/usr/share/elasticsearch/config/certs}
ES_URL=${ES_URL:-https://elasticsearch:9200}
ES_WAIT_ATTEMPTS=${ES_WAIT_ATTEMPTS:-60}
ES_WAIT_INTERVAL=${ES_WAIT_INTERVAL:-5}
INDEX_PREFIX=${NEWSWIRE_INDEX_PREFIX:-newswire}
NEWSWIRE_ES_USERNAME=${NEWSWIRE_ES_USERNAME:-newswire}

need() {
  if [ -z "${!1:-}" ]; then
    echo "elastic-setup: $1 is empty; set it in .env (see .env.example)" >&2
    exit 1
  fi
  # json_escape handles quotes and backslashes; control characters are refused outright.
  case "${!1}" in
    *[[:cntrl:]]*)
      echo "elastic-setup: $1 contains a control character" >&2
      exit 1
      ;;
  esac
}

# JSON string body of a password: escape backslashes and double quotes.
json_escape() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'; }

make_certs() {
  cd /usr/share/elasticsearch
  mkdir -p "$CERTS"
  if [ ! -f "$CERTS/ca/ca.crt" ]; then
    echo "elastic-setup: creating the CA"
    bin/elasticsearch-certutil ca --silent --pem --out "$CERTS/ca.zip"
    unzip -o -q "$CERTS/ca.zip" -d "$CERTS"
    rm -f "$CERTS/ca.zip"
  fi
  if [ ! -f "$CERTS/elasticsearch/elasticsearch.crt" ]; then
    echo "elastic-setup: creating the node certificate"
    cat > "$CERTS/instances.yml" <<YAML
instances:
  - name: elasticsearch
    dns: [elasticsearch, localhost]
    ip: [127.0.0.1]
YAML
    bin/elasticsearch-certutil cert --silent --pem --in "$CERTS/instances.yml" \
      --out "$CERTS/certs.zip" --ca-cert "$CERTS/ca/ca.crt" --ca-key "$CERTS/ca/ca.key"
    unzip -o -q "$CERTS/certs.zip" -d "$CERTS"
    rm -f "$CERTS/certs.zip"
  fi
  # Elasticsearch, Kibana and newswire all run with group 0: group-readable is enough.
  chown -R root:root "$CERTS"
  find "$CERTS" -type d -exec chmod 0750 {} +
  find "$CERTS" -type f -exec chmod 0640 {} +
  chmod 0600 "$CERTS/ca/ca.key"
  echo "elastic-setup: certificates ready"
}

es() {
  curl --silent --show-error --fail --cacert "$CERTS/ca/ca.crt" \
    -u "elastic:${ELASTIC_PASSWORD}" -H 'Content-Type: application/json' "$@"
}

make_users() {
  need ELASTIC_PASSWORD
  need KIBANA_PASSWORD
  need NEWSWIRE_ES_PASSWORD
  echo "elastic-setup: waiting for Elasticsearch at $ES_URL"
  for attempt in $(seq 1 "$ES_WAIT_ATTEMPTS"); do
    if es "$ES_URL/_cluster/health?wait_for_status=yellow&timeout=5s" >/dev/null 2>&1; then
      break
    fi
    if [ "$attempt" -eq "$ES_WAIT_ATTEMPTS" ]; then
      echo "elastic-setup: Elasticsearch did not answer in time" >&2
      exit 1
    fi
    sleep "$ES_WAIT_INTERVAL"
  done

  echo "elastic-setup: setting the kibana_system password"
  printf '{"password":"%s"}' "$(json_escape "$KIBANA_PASSWORD")" |
    es -X POST "$ES_URL/_security/user/kibana_system/_password" --data-binary @- >/dev/null

  echo "elastic-setup: role newswire_writer on ${INDEX_PREFIX}-*"
  es -X PUT "$ES_URL/_security/role/newswire_writer" --data-binary @- >/dev/null <<JSON
{
  "cluster": ["monitor", "manage_index_templates", "manage_ilm"],
  "indices": [
    {
      "names": ["${INDEX_PREFIX}-*"],
      "privileges": ["create_index", "manage", "write", "read", "view_index_metadata"]
    }
  ]
}
JSON

  echo "elastic-setup: user ${NEWSWIRE_ES_USERNAME}"
  printf '{"password":"%s","roles":["newswire_writer"],"full_name":"newswire services"}' \
    "$(json_escape "$NEWSWIRE_ES_PASSWORD")" |
    es -X PUT "$ES_URL/_security/user/${NEWSWIRE_ES_USERNAME}" --data-binary @- >/dev/null
  echo "elastic-setup: users ready"
}

case "${1:-}" in
  certs) make_certs ;;
  users) make_users ;;
  *) echo "usage: $0 certs|users" >&2; exit 2 ;;
esac
