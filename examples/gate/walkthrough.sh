#!/usr/bin/env bash
# The whole life of a GATE Cloud-style job with curl: create it, upload the example
# application and documents, add an input and two outputs, start it, wait for COMPLETED,
# then read its details, results, report and log. Against a running `conveyor dev`:
#
#   CONVEYOR_URL=http://127.0.0.1:8080 CONVEYOR_API_KEY=... examples/gate/walkthrough.sh
#
# FORMAT=xml sends and asks for the seed's XML forms instead of JSON.
set -euo pipefail

URL=${CONVEYOR_URL:-http://127.0.0.1:8080}
: "${CONVEYOR_API_KEY:?set CONVEYOR_API_KEY (conveyor dev prints one)}"
AUTH="Authorization: api-key $CONVEYOR_API_KEY"
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if [ "${FORMAT:-json}" = xml ]; then
    TYPE=application/xml
else
    TYPE=application/json
fi

# call METHOD PATH [BODY]: the answer's body, in the chosen format.
call() {
    curl -sS --fail-with-body -X "$1" "$URL$2" -H "$AUTH" -H "Accept: $TYPE" \
        -H "Content-Type: $TYPE" ${3:+--data "$3"}
}

# field NAME: a field of the answer on stdin (a JSON key or an XML element).
field() {
    python3 -c '
import json, sys, xml.etree.ElementTree as ET
raw, name = sys.stdin.read(), sys.argv[1]
if raw.lstrip().startswith("<"):
    found = ET.fromstring(raw).find(name)
    print("" if found is None else found.text or "")
else:
    print(json.loads(raw).get(name, ""))' "$1"
}

# body ROOT KEY VALUE...: a request body in the chosen format.
body() {
    python3 -c '
import json, sys, xml.etree.ElementTree as ET
form, root, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
pairs = dict(zip(rest[::2], rest[1::2]))
if form == "xml":
    element = ET.Element(root)
    for key, value in pairs.items():
        ET.SubElement(element, key).text = value
    print(ET.tostring(element, encoding="unicode"))
else:
    print(json.dumps(pairs))' "${FORMAT:-json}" "$@"
}

zip_folder() { (cd "$1" && python3 -m zipfile -c "$2" ./*); }

job=$(call POST /api/job "$(body job name 'people and places')" | field id)
echo "job $job created"

put_url=$(call POST "/api/job/$job/application" "$(body application fileName app.zip)" \
    | field putUrl)
(cd "$HERE/application" && python3 -m zipfile -c "$WORK/app.zip" pipeline.json lists)
curl -sS --fail -X PUT -H 'Content-Type: application/octet-stream' \
    --data-binary @"$WORK/app.zip" "$put_url"
echo "application uploaded"

bundle=$(call POST /api/data "$(body bundle name 'example documents' fileName docs.zip)")
bundle_id=$(echo "$bundle" | field id)
zip_folder "$HERE/documents" "$WORK/docs.zip"
curl -sS --fail -X PUT -H 'Content-Type: application/octet-stream' \
    --data-binary @"$WORK/docs.zip" "$(echo "$bundle" | field putUrl)"
echo "documents uploaded as data bundle $bundle_id"

# Adding a spec answers 303 with its URL in Location.
curl -sS --fail -o /dev/null -w '%{http_code} %{redirect_url}\n' -X POST \
    "$URL/api/job/$job/input" -H "$AUTH" -H "Content-Type: $TYPE" \
    --data "$(body input sourceBundle "$bundle_id")"
for output in JSON GATE_XML; do
    curl -sS --fail -o /dev/null -w '%{http_code} %{redirect_url}\n' -X POST \
        "$URL/api/job/$job/output" -H "$AUTH" -H "Content-Type: $TYPE" \
        --data "$(body output type "$output")"
done

echo "state: $(call GET "/api/job/$job" | field state)"
call POST "/api/job/$job/control" "$(body control action start)"
until [ "$(call GET "/api/job/$job" | field state)" = COMPLETED ]; do sleep 1; done

call GET "/api/job/$job"; echo
result=$(call GET "/api/job/$job" | field resultBundle)
curl -sS --fail "$result" -H "$AUTH" -H "Accept: $TYPE"; echo
call GET "/api/job/$job/reports"; echo
call GET "/api/job/$job/reports/summary"; echo
call GET "/api/job/$job/log"; echo
