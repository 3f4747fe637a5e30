#!/usr/bin/env bash
# Static checks of ansible/ (part of ./scripts/test): every playbook passes
# `ansible-playbook --syntax-check`, the Prometheus scrape config of the prometheus role renders
# from a fixture inventory to the expected targets (and passes `promtool check config` where
# promtool is installed), and the folder passes `ansible-lint --offline --profile production`.
set -euo pipefail
cd "$(dirname "$0")"
export ANSIBLE_CONFIG="$PWD/ansible.cfg" ANSIBLE_NOCOLOR=1
for pb in site.yml provision.yml shape.yml unshape.yml start.yml stop.yml status.yml collect.yml metrics.yml; do
  ansible-playbook -i localhost, --syntax-check "$pb" >/dev/null 2>"/tmp/ansible-check.$$" || {
    cat "/tmp/ansible-check.$$" >&2; rm -f "/tmp/ansible-check.$$"; echo "ansible check: $pb fails --syntax-check" >&2; exit 1; }
done
rm -f "/tmp/ansible-check.$$"
echo "ansible check: syntax-check ok on 9 playbooks"
rendered="$(mktemp "${TMPDIR:-/tmp}/steward-prometheus.XXXXXX.yml")"
trap 'rm -f "$rendered"' EXIT
ansible-playbook -i tests/metrics-inventory.yml tests/render-metrics.yml \
  -e metrics_render_out="$rendered" >"$rendered.log" 2>&1 || {
  cat "$rendered.log" >&2; rm -f "$rendered.log"; echo "ansible check: the Prometheus scrape config does not render as expected" >&2; exit 1; }
rm -f "$rendered.log"
if command -v promtool >/dev/null; then
  promtool check config --syntax-only "$rendered" >/dev/null || { echo "ansible check: promtool rejects the rendered scrape config" >&2; exit 1; }
  echo "ansible check: the Prometheus scrape config renders and passes promtool"
else
  echo "ansible check: the Prometheus scrape config renders (promtool not installed: not checked by it)"
fi
ansible-lint --offline --profile production --nocolor
