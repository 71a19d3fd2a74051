#!/usr/bin/python3
"""The real openstack CLI (python-openstackclient), run against the oracle's neutron-server.

Usage: osc.py [--project P] OPENSTACK-ARGS...

Without --project this is `openstack --os-auth-type none --os-endpoint
http://127.0.0.1:9696 OPENSTACK-ARGS`.  Neutron's noauth middleware gives every request an
admin context in project `fake_project_id`, and the CLI cannot name another project without
keystone; with --project P every POST body the CLI sends gets `"project_id": P` added (the
body is otherwise exactly the CLI's), which is what the CLI sends with keystone and
`--project P`.
"""
import sys

API = 'http://127.0.0.1:9696'


def inject_project(project):
    from keystoneauth1 import session

    original = session.Session.request

    def request(self, url, method, *args, **kwargs):
        body = kwargs.get('json')
        if method.upper() == 'POST' and isinstance(body, dict) and len(body) == 1:
            (obj,) = body.values()
            if isinstance(obj, dict):
                obj.setdefault('project_id', project)
        return original(self, url, method, *args, **kwargs)

    session.Session.request = request


def main(argv):
    if len(argv) >= 2 and argv[0] == '--project':
        inject_project(argv[1])
        argv = argv[2:]
    from openstackclient import shell
    return shell.main(['--os-auth-type', 'none', '--os-endpoint', API] + argv)


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
