#!/usr/bin/python3
"""Run an `ovn-heater openstack replay` steps file against a real neutron-server.

Usage: oracle.py --run-dir DIR STEPS.yml OUT_DIR   (normally through run.sh)

run.sh has started NB, SB and ovn-northd in DIR; this script starts neutron-server (through
services.sh) before the first step that is not an `ovn:` step, runs every step through the
real openstack CLI (osc.py), plays ovn-controller's SB writes for `ovn:` steps and nova's
Neutron calls for `server create|delete`, and dumps the NB after every step to
OUT_DIR/NN-NAME.json (nbdump.py layout).  See README.md for the step format and names.
"""
import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import nbdump  # noqa: E402

PY = '/usr/bin/python3'
API = 'http://127.0.0.1:9696/v2.0'
STEP_KEYS = {'openstack', 'ovn', 'project', 'save', 'dump', 'command', 'expect'}
UUID_RE = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')
DEFAULT_PROJECT = 'fake_project_id'
# Seconds the NB must stay unchanged before a dump.
QUIET = float(os.environ.get('ORACLE_QUIET', '1.0'))
# Resource collections of `X show` lookups.
SHOW_COLLECTIONS = {
    'network': 'networks', 'subnet': 'subnets', 'port': 'ports', 'router': 'routers',
    'security group': 'security-groups', 'floating ip': 'floatingips',
}


class StepError(Exception):
    pass


def log(msg):
    print('[%s] %s' % (time.strftime('%H:%M:%S'), msg), file=sys.stderr, flush=True)


def slug(step):
    """The dump name of a step without `dump:` (README.md, "Dump files")."""
    if step.get('openstack') is not None:
        text, prefix = step['openstack'], []
    elif step.get('ovn') is not None:
        text, prefix = step['ovn'], ['ovn']
    else:
        return 'dump'
    words = []
    for w in text.split():
        if w.startswith('-') or '$' in w or len(words) == 4:
            break
        w = re.sub(r'[^a-z0-9]', '', w)
        if w:
            words.append(w)
    return '-'.join(prefix + words)


def api(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(API + '/' + path, data=data, method=method,
                                 headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(req, timeout=60) as r:
        raw = r.read()
    return json.loads(raw) if raw else None


def api_list(collection, **filters):
    q = urllib.parse.urlencode(filters)
    key = collection.replace('-', '_')
    return api('GET', '%s?%s' % (collection, q))[key]


def wait_for(what, predicate, timeout=60.0, interval=0.2):
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() > deadline:
            raise StepError('timed out after %ss waiting for %s' % (timeout, what))
        time.sleep(interval)


class Oracle(object):
    def __init__(self, run_dir, out_dir):
        self.run_dir = run_dir
        self.out_dir = out_dir
        self.nb = 'unix:%s/nb.sock' % run_dir
        self.sb = 'unix:%s/sb.sock' % run_dir
        self.vars = {}
        self.chassis = []
        self.started = False
        self.schema_tables = None

    # ---------------------------------------------------------------- tools --
    def nbctl(self, *args):
        return subprocess.check_output(['ovn-nbctl', '--db=' + self.nb] + list(args),
                                       text=True).strip()

    def sbctl(self, *args):
        return subprocess.check_output(['ovn-sbctl', '--db=' + self.sb] + list(args),
                                       text=True).strip()

    def osc(self, words, project=None, check=True):
        cmd = [PY, os.path.join(HERE, 'osc.py')]
        if project:
            cmd += ['--project', project]
        cmd += words
        p = subprocess.run(cmd, capture_output=True, text=True)
        if check and p.returncode != 0:
            raise StepError('openstack %s failed (exit %d): %s'
                            % (shlex.join(words), p.returncode, p.stderr.strip()))
        return p

    def substitute(self, text):
        def sub(m):
            name = m.group(1)
            if name not in self.vars:
                raise StepError('${%s} is not set (an earlier step needs `save: %s`)'
                                % (name, name))
            return self.vars[name]
        return re.sub(r'\$\{([^}]*)\}', sub, text)

    def ensure_started(self):
        if not self.started:
            subprocess.run([os.path.join(HERE, 'services.sh'), 'neutron', self.run_dir],
                           check=True)
            self.started = True
            # ML2/OVN's maintenance worker runs its one-shot fix-ups right after start.
            self.settle(quiet=3.0)

    def heartbeat(self):
        """A live ovn-controller copies SB_Global.nb_cfg into its Chassis_Private row."""
        if not self.chassis:
            return
        cfg = self.sbctl('get', 'SB_Global', '.', 'nb_cfg')
        args = []
        for ch in self.chassis:
            if args:
                args.append('--')
            args += ['set', 'Chassis_Private', ch, 'nb_cfg=' + cfg,
                     'nb_cfg_timestamp=%d' % int(time.time() * 1000)]
        self.sbctl(*args)

    # ------------------------------------------------------------- settling --
    def settle(self, quiet=QUIET):
        """Neutron's asynchronous follow-ups are done, northd has caught up, NB is quiet."""
        if self.started:
            self.wait_router_ports_active()
        self.nbctl('--timeout=60', '--wait=sb', 'sync')
        self.heartbeat()
        tables = self.tables()
        last = nbdump.fingerprint(nbdump.query_all(self.nb, tables))
        since = time.monotonic()
        deadline = since + 60
        while time.monotonic() - since < quiet:
            time.sleep(0.1)
            fp = nbdump.fingerprint(nbdump.query_all(self.nb, tables))
            if fp != last:
                last, since = fp, time.monotonic()
            if time.monotonic() > deadline:
                log('warning: NB still changing after 60 s; dumping anyway')
                break

    def wait_router_ports_active(self):
        """Neutron marks a router interface ACTIVE (and rewrites its LSP and LRP) ~5 s after
        `router add`, from a retry loop: wait for it."""
        def done():
            ports = api_list('ports')
            return all(p['status'] == 'ACTIVE' for p in ports
                       if p['device_owner'].startswith('network:router_interface'))
        wait_for('router interface ports to become ACTIVE', done, timeout=60)

    def tables(self):
        if self.schema_tables is None:
            self.schema_tables = sorted(nbdump.get_schema(self.nb)['tables'])
        return self.schema_tables

    def dump(self, name, command):
        doc = {
            'database': 'OVN_Northbound',
            'schema_version': nbdump.get_schema(self.nb).get('version'),
            'step': name,
            'command': command,
            'tables': nbdump.query_all(self.nb, self.tables()),
        }
        path = os.path.join(self.out_dir, name + '.json')
        with open(path, 'w') as f:
            json.dump(doc, f, indent=1, sort_keys=True)
            f.write('\n')

    # ---------------------------------------------------------- resolution --
    def find_id(self, collection, name_or_id, project=None):
        if UUID_RE.match(name_or_id):
            return name_or_id
        filters = {'name': name_or_id}
        if project:
            filters['project_id'] = project
        found = api_list(collection, **filters)
        if collection == 'floatingips' and not found:
            found = api_list(collection, floating_ip_address=name_or_id)
        if len(found) != 1:
            raise StepError('%d %s named %r%s' % (len(found), collection, name_or_id,
                            ' in project %s' % project if project else ''))
        return found[0]['id']

    def chassis_of_host(self, host):
        out = self.sbctl('--bare', '--columns=name', 'find', 'Chassis', 'hostname=' + host)
        names = out.split()
        if not names:
            names = self.sbctl('--bare', '--columns=name', 'find', 'Chassis',
                               'name=' + host).split()
        if len(names) != 1:
            raise StepError('no single SB chassis with hostname %r (register it first)' % host)
        return names[0]

    def claim(self, logical_port, chassis, up):
        wait_for('Port_Binding %s' % logical_port, lambda: self.sbctl(
            '--bare', '--columns=logical_port', 'find', 'Port_Binding',
            'logical_port=' + logical_port) != '', timeout=30)
        self.sbctl('lsp-bind', logical_port, chassis)
        if up:
            self.sbctl('set', 'Port_Binding', logical_port, 'up=true')

    def wait_port_status(self, port_id, status):
        def ok():
            return api('GET', 'ports/' + port_id)['port']['status'] == status
        wait_for('port %s to be %s' % (port_id, status), ok, timeout=60)

    def wait_fip_status(self, fip_id, status):
        def ok():
            return api('GET', 'floatingips/' + fip_id)['floatingip']['status'] == status
        wait_for('floating IP %s to be %s' % (fip_id, status), ok, timeout=60)

    # ------------------------------------------------------------ openstack --
    def openstack(self, line, project, save, refused):
        words = shlex.split(line)
        show = self.show_target(words)
        if show is not None:
            collection, name, proj = show
            return self.find_id(collection, name, proj)
        # `--project P` (a keystone name lookup in a real cloud) becomes the request's project.
        if '--project' in words:
            i = words.index('--project')
            if i + 1 >= len(words):
                raise StepError('--project needs a value')
            project = words[i + 1]
            del words[i:i + 2]
        if words[:2] == ['server', 'create']:
            return self.server_create(words[2:], project, refused)
        if words[:2] == ['server', 'delete']:
            for name in words[2:]:
                port = self.vars.get(name)
                if port is None:
                    raise StepError('unknown server %r' % name)
                self.osc(['port', 'delete', port])
            return None
        creates = 'create' in words[:4]
        extra = ['-f', 'value', '-c', 'id'] if (save and creates) else []
        p = self.osc(words + extra, project or None, check=False)
        if refused:
            if p.returncode == 0:
                raise StepError('expected Neutron to refuse this, but it succeeded')
            if re.search(r'\b5\d\d\b|Internal Server Error|Traceback', p.stderr):
                raise StepError('refused, but not as a client error: ' + p.stderr.strip())
            log('  refused as expected: ' + p.stderr.strip().splitlines()[-1])
            return None
        if p.returncode != 0:
            raise StepError('openstack %s failed (exit %d): %s'
                            % (line, p.returncode, p.stderr.strip()))
        new_id = p.stdout.strip() if extra else None
        self.after_openstack(words, new_id)
        return new_id

    def show_target(self, words):
        """(collection, name, project) of a `X show NAME [--project P]` lookup, else None."""
        for kind, collection in SHOW_COLLECTIONS.items():
            k = kind.split()
            if words[:len(k)] == k and words[len(k):len(k) + 1] == ['show']:
                rest = words[len(k) + 1:]
                proj = None
                if '--project' in rest:
                    i = rest.index('--project')
                    proj = rest[i + 1]
                    del rest[i:i + 2]
                if len(rest) != 1:
                    raise StepError('%s show takes one NAME_OR_ID [--project P]' % kind)
                return collection, rest[0], proj
        return None

    def after_openstack(self, words, new_id):
        """Waits for what Neutron finishes asynchronously after some calls."""
        if words[:3] == ['floating', 'ip', 'set'] or (
                words[:3] == ['floating', 'ip', 'create'] and '--port' in words):
            fip = new_id or self.find_id('floatingips', words[-1])
            self.wait_fip_status(fip, 'ACTIVE')
        elif words[:3] == ['floating', 'ip', 'unset'] and '--port' in words:
            self.wait_fip_status(self.find_id('floatingips', words[-1]), 'DOWN')

    def server_create(self, args, project, refused):
        """nova's two Neutron calls (POST /ports with device_id; PUT with device_owner,
        binding:host_id, dns_name), then ovn-controller on the host claims the VIF."""
        opts = {'network': None, 'host': None, 'fixed-ip': None, 'flavor': None, 'image': None}
        names = []
        i = 0
        while i < len(args):
            a = args[i]
            if a.startswith('--') and a[2:] in opts and i + 1 < len(args):
                opts[a[2:]] = args[i + 1]
                i += 2
            else:
                names.append(a)
                i += 1
        if len(names) != 1 or not opts['network'] or not opts['host']:
            raise StepError('server create --network NET --host HOST [--fixed-ip IP] NAME')
        name = names[0]
        device = str(uuid.uuid4())
        create = ['port', 'create', '--network', opts['network'], '--device', device]
        if opts['fixed-ip']:
            create += ['--fixed-ip', 'ip-address=' + opts['fixed-ip']]
        p = self.osc(create + ['', '-f', 'value', '-c', 'id'], project or None, check=not refused)
        if refused:
            if p.returncode == 0:
                raise StepError('expected Neutron to refuse this, but it succeeded')
            return None
        port = p.stdout.strip()
        self.osc(['port', 'set', '--device', device, '--device-owner', 'compute:nova',
                  '--host', opts['host'], '--dns-name', name, port])
        self.claim(port, self.chassis_of_host(opts['host']), up=True)
        self.wait_port_status(port, 'ACTIVE')
        self.vars[name] = port
        return port

    # ------------------------------------------------------------------ ovn --
    def ovn(self, line):
        words = shlex.split(line)
        cmd, args = words[0], words[1:]
        if cmd == 'register-chassis':
            opts = {'encap-ip': None, 'hostname': None, 'bridge-mappings': None}
            gateway = False
            names = []
            i = 0
            while i < len(args):
                a = args[i]
                if a == '--gateway':
                    gateway = True
                    i += 1
                elif a.startswith('--') and a[2:] in opts and i + 1 < len(args):
                    opts[a[2:]] = args[i + 1]
                    i += 2
                else:
                    names.append(a)
                    i += 1
            if len(names) != 1 or not opts['encap-ip']:
                raise StepError('register-chassis NAME --encap-ip IP [--hostname H] '
                                '[--gateway] [--bridge-mappings M]')
            self.register_chassis(names[0], opts['encap-ip'], opts['hostname'] or names[0],
                                  gateway, opts['bridge-mappings'])
        elif cmd == 'heartbeat' and not args:
            self.heartbeat()
        elif cmd == 'sync' and not args:
            self.nbctl('--timeout=60', '--wait=sb', 'sync')
        elif cmd == 'claim-gateway' and len(args) == 1:
            router = self.find_id('routers', args[0])
            gw = api_list('ports', device_id=router, device_owner='network:router_gateway')
            if len(gw) != 1:
                raise StepError('router %s has no gateway port' % args[0])
            port = gw[0]['id']
            best = None
            for r in self.nbctl('--format=csv', '--data=bare', '--no-headings',
                                '--columns=name,priority,chassis_name',
                                'list', 'Gateway_Chassis').splitlines():
                gname, prio, ch = r.split(',')
                if gname.startswith('lrp-%s_' % port) and (best is None or int(prio) > best[0]):
                    best = (int(prio), ch)
            if best is None:
                raise StepError('no Gateway_Chassis for lrp-%s' % port)
            self.claim('cr-lrp-' + port, best[1], up=False)
            self.wait_port_status(port, 'ACTIVE')
        elif cmd == 'claim-port' and args:
            up = '--up' in args
            rest = [a for a in args if a != '--up']
            if len(rest) != 2:
                raise StepError('claim-port PORT CHASSIS [--up]')
            port = self.find_id('ports', rest[0])
            self.claim(port, rest[1], up)
            if up:
                self.wait_port_status(port, 'ACTIVE')
        else:
            raise StepError('unsupported ovn step %r' % line)

    def register_chassis(self, name, ip, hostname, gateway, mappings):
        keys = {'datapath-type': 'system', 'iface-types': 'geneve,internal,system,tap,vxlan'}
        if gateway:
            keys['ovn-cms-options'] = 'enable-chassis-as-gw'
        if mappings:
            keys['ovn-bridge-mappings'] = mappings
        args = ['chassis-add', name, 'geneve', ip, '--', 'set', 'Chassis', name,
                'hostname="%s"' % hostname]
        for k, v in sorted(keys.items()):
            args += ['external_ids:%s="%s"' % (k, v), 'other_config:%s="%s"' % (k, v)]
        self.sbctl(*args)
        chassis_uuid = self.sbctl('--bare', '--columns=_uuid', 'find', 'Chassis', 'name=' + name)
        self.sbctl('create', 'Chassis_Private', 'name=' + name, 'chassis=' + chassis_uuid,
                   'nb_cfg=0', 'nb_cfg_timestamp=%d' % int(time.time() * 1000))
        self.chassis.append(name)

    # ----------------------------------------------------------------- main --
    def run(self, steps):
        width = 2
        if len(steps) > 99:
            raise StepError('a sequence has at most 99 steps (got %d)' % len(steps))
        for n, step in enumerate(steps, 1):
            name = '%0*d-%s' % (width, n, step.get('dump') or slug(step))
            refused = step.get('expect') == 'refused'
            self.heartbeat()
            try:
                if step.get('openstack') is not None:
                    self.ensure_started()
                    line = self.substitute(step['openstack'])
                    log('%s: openstack %s%s' % (name, line, '   (must be refused)' if refused else ''))
                    new_id = self.openstack(line, step.get('project'), step.get('save'), refused)
                    default_command = 'openstack ' + line
                elif step.get('ovn') is not None:
                    line = self.substitute(step['ovn'])
                    log('%s: ovn %s' % (name, line))
                    self.ovn(line)
                    new_id = None
                    default_command = '(ovn-controller side: %s)' % line
                else:
                    self.ensure_started()
                    new_id = None
                    default_command = ''
                if step.get('save'):
                    if not new_id:
                        raise StepError('`save: %s` but the step yields no id' % step['save'])
                    self.vars[step['save']] = new_id
            except (StepError, subprocess.CalledProcessError) as e:
                raise StepError('step %d (%s): %s' % (n, name, e))
            self.settle()
            command = self.substitute(step['command']) if step.get('command') else default_command
            self.dump(name, command)


def load_steps(path):
    with open(path) as f:
        doc = yaml.safe_load(f)
    if not isinstance(doc, dict) or not isinstance(doc.get('steps'), list):
        raise StepError('%s: expected a mapping with a `steps:` list' % path)
    for i, s in enumerate(doc['steps'], 1):
        if not isinstance(s, dict):
            raise StepError('step %d is not a mapping' % i)
        unknown = set(s) - STEP_KEYS
        if unknown:
            raise StepError('step %d: unknown key(s) %s' % (i, ', '.join(sorted(unknown))))
        if s.get('openstack') is not None and s.get('ovn') is not None:
            raise StepError('step %d has both `openstack` and `ovn`' % i)
        if s.get('expect') not in (None, 'refused'):
            raise StepError('step %d: `expect:` takes only `refused`' % i)
    return doc['steps']


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--run-dir', required=True)
    ap.add_argument('steps')
    ap.add_argument('out_dir')
    a = ap.parse_args()
    try:
        steps = load_steps(a.steps)
    except (OSError, yaml.YAMLError, StepError) as e:
        print('oracle: bad steps file: %s' % e, file=sys.stderr)
        return 2
    os.makedirs(a.out_dir, exist_ok=True)
    try:
        Oracle(a.run_dir, a.out_dir).run(steps)
    except StepError as e:
        print('oracle: %s' % e, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
