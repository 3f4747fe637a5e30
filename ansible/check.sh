#!/usr/bin/env bash
# Static checks of ansible/ (part of ./scripts/test): every playbook passes
# `ansible-playbook --syntax-check`, and the folder passes
# `ansible-lint --offline --profile production`.
set -euo pipefail
cd "$(dirname "$0")"
export ANSIBLE_CONFIG="$PWD/ansible.cfg" ANSIBLE_NOCOLOR=1
for pb in site.yml provision.yml shape.yml unshape.yml start.yml stop.yml status.yml collect.yml; do
  ansible-playbook -i localhost, --syntax-check "$pb" >/dev/null 2>"/tmp/ansible-check.$$" || {
    cat "/tmp/ansible-check.$$" >&2; rm -f "/tmp/ansible-check.$$"; echo "ansible check: $pb fails --syntax-check" >&2; exit 1; }
done
rm -f "/tmp/ansible-check.$$"
echo "ansible check: syntax-check ok on 8 playbooks"
ansible-lint --offline --profile production --nocolor
