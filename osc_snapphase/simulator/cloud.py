#   Licensed under the Apache License, Version 2.0 (the "License"); you may
#   not use this file except in compliance with the License. You may obtain
#   a copy of the License at
#
#        http://www.apache.org/licenses/LICENSE-2.0
#
#   Unless required by applicable law or agreed to in writing, software
#   distributed under the License is distributed on an "AS IS" BASIS, WITHOUT
#   WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied. See the
#   License for the specific language governing permissions and limitations
#   under the License.

"""The state of the simulated cloud: users, tokens, servers and images."""

import collections
import datetime
import secrets
import threading
import time
import uuid

from osc_snapphase.simulator import drivers
from osc_snapphase.simulator import scheduler

# Seconds (bounce: milliseconds) of each simulated step.
DEFAULT_DURATIONS = {
    'build': 0.3,
    'delete': 0.2,
    'power': 0.2,
    # image_snapshot_pending, until compute picks up the cast.
    'pending': 0.2,
    # image_snapshot (xenserver: the disk copy itself; libvirt: prep,
    # with the managedSave of a cold snapshot at its end).
    'snapshot': 2.0,
    # image_backup, as 'snapshot' for a createBackup.
    'backup': 2.0,
    # image_pending_upload when it is not the copy (xenserver: the VHD
    # coalesce after the copy; libvirt and vmware: see 'copy').
    'pending_upload': 1.0,
    # The disk copy of libvirt file/lvm/rbd-fallback and vmware, during
    # the (second) image_pending_upload.
    'copy': 1.0,
    # Milliseconds of each short libvirt step: the first
    # image_pending_upload and the image_uploading bounce.
    'bounce': 5.0,
    # libvirt-rbd: from image_uploading to the rbd snapshot (point in
    # time), then the clone + flatten (the copy) until the image is active.
    'rbd_snapshot': 0.2,
    'flatten': 2.0,
    # image_uploading with a 'saving' image: the upload to Glance.
    'uploading': 10.0,
    # A Cinder snapshot of a volume-backed server stays 'creating'.
    'volume_snapshot': 0.5,
    'deleted_retention': 300.0,
}
# Steps an operation can be held at (see Cloud.checkpoint).
# (reboot: a reboot's first task state; power: powering-off/-on.)
HOLD_STEPS = drivers.STEPS + ('volume_snapshot', 'reboot', 'power')
REGION = 'RegionOne'
# API requests kept for GET /_sim/requests (the counts per route are exact).
REQUEST_LOG_SIZE = 100000
DOMAIN = {'id': 'default', 'name': 'Default'}

# vm_state -> status, with the task states that override it (as Nova does).
_STATUS = {
    'active': 'ACTIVE', 'building': 'BUILD', 'stopped': 'SHUTOFF',
    'paused': 'PAUSED', 'suspended': 'SUSPENDED', 'error': 'ERROR',
    'deleted': 'DELETED', 'soft-delete': 'SOFT_DELETED',
    'shelved': 'SHELVED', 'shelved_offloaded': 'SHELVED_OFFLOADED',
    'rescued': 'RESCUE', 'resized': 'VERIFY_RESIZE',
}
_TASK_STATUS = {
    'rebooting': 'REBOOT', 'reboot_pending': 'REBOOT',
    'reboot_started': 'REBOOT', 'rebooting_hard': 'HARD_REBOOT',
    'reboot_pending_hard': 'HARD_REBOOT', 'reboot_started_hard': 'HARD_REBOOT',
    'rebuilding': 'REBUILD', 'migrating': 'MIGRATING',
    'resize_prep': 'RESIZE', 'resize_migrating': 'RESIZE',
    'resize_migrated': 'RESIZE', 'resize_finish': 'RESIZE',
    'password': 'PASSWORD',
}


def isotime(ts, micro=False, zulu=True):
    """Format a time.time() value the way the OpenStack APIs do."""
    dt = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    text = dt.strftime('%Y-%m-%dT%H:%M:%S.%f' if micro
                       else '%Y-%m-%dT%H:%M:%S')
    return text + ('Z' if zulu else '')


def parse_isotime(text):
    """Parse an ISO 8601 time into a time.time() value, or raise ValueError."""
    text = text.strip().replace(' ', '+')
    if text.endswith('Z'):
        text = text[:-1] + '+00:00'
    dt = datetime.datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp()


def new_id():
    return str(uuid.uuid4())


def take_rule(rules, matches):
    """Return the first rule with count left that matches, consuming one.

    A rule's ``count`` is how many more times it fires (None: always);
    ``fired`` counts how often it did.
    """
    for rule in rules:
        if rule.get('count') == 0 or not matches(rule):
            continue
        if rule.get('count') is not None:
            rule['count'] -= 1
        rule['fired'] = rule.get('fired', 0) + 1
        return rule
    return None


def server_status(server):
    """Return the API status of a server from its vm_state and task_state."""
    vm_state = server['vm_state']
    if vm_state in ('active', 'stopped'):
        status = _TASK_STATUS.get(server['task_state'])
        if status and (vm_state == 'active'
                       or status in ('RESIZE', 'REBUILD')):
            return status
    return _STATUS.get(vm_state, 'UNKNOWN')


class Cloud:
    """All state of the simulator, guarded by one re-entrant lock."""

    def __init__(self, host='127.0.0.1', port=0, durations=None,
                 token_lifetime=3600.0, cloud_name='snapsim',
                 serve_secrets=False):
        self.lock = threading.RLock()
        self.timers = scheduler.Scheduler()
        self.host = host
        self.port = port
        self.cloud_name = cloud_name
        self.durations = dict(DEFAULT_DURATIONS)
        self.durations.update(durations or {})
        self.config = {
            'token_lifetime': float(token_lifetime),
            'hide_ext_sts': False,
            'old_nova_actions': False,
            # The Nova virt driver order of image-creates (drivers.py).
            'driver': 'xenserver',
        }
        self.ceph_fsid = new_id()
        self.projects = {
            'demo': {'id': uuid.uuid4().hex, 'name': 'demo'},
            'admin': {'id': uuid.uuid4().hex, 'name': 'admin'},
        }
        self.users = {
            'demo': {
                'id': uuid.uuid4().hex, 'name': 'demo', 'project': 'demo',
                'password': 'sim-secret-password-' + secrets.token_hex(8),
                'roles': ['member', 'reader'],
            },
            'admin': {
                'id': uuid.uuid4().hex, 'name': 'admin', 'project': 'admin',
                'password': 'sim-secret-admin-password-'
                + secrets.token_hex(8),
                'roles': ['admin', 'member', 'reader'],
            },
        }
        # Live tokens; expired ones go as new ones are issued.
        self.tokens = {}
        # For tests (GET /_sim/secrets): every token issued, expired too.
        self.serve_secrets = serve_secrets
        self.issued_tokens = []
        self.servers = {}
        self.images = {}
        self.deleted_images = {}
        self.flavors = {}
        self.actions = {}
        self.instance_faults = {}
        self.ops = {}
        self.op_faults = []
        self.http_faults = []
        self.hold_rules = []
        self.held = []
        self.captures = []
        self.log = []
        self.requests = collections.deque(maxlen=REQUEST_LOG_SIZE)
        self.request_counts = {}

    @property
    def base_url(self):
        host = self.host
        if ':' in host:
            host = '[%s]' % host
        return 'http://%s:%d' % (host, self.port)

    def count_request(self, entry):
        """Count an API request and keep its entry (the recent ones)."""
        self.requests.append(entry)
        self.request_counts[entry['key']] = self.request_counts.get(
            entry['key'], 0) + 1

    def reset_requests(self):
        self.requests.clear()
        self.request_counts.clear()

    def duration(self, name):
        value = max(0.0, float(self.durations.get(name, 0.0)))
        return value / 1000.0 if name == 'bounce' else value

    def hold(self, step, server=None):
        """Hold every operation (of server: id or name) reaching step.

        The rule stays until released and fires once per operation.
        """
        if step not in HOLD_STEPS:
            raise ValueError('step must be one of %s' % (HOLD_STEPS,))
        rule = {'step': step, 'server': server, 'seen': set()}
        self.hold_rules.append(rule)
        return rule

    def checkpoint(self, server, step, proceed, key=None):
        """Call proceed() now, or on release if a hold rule matches.

        key names the operation (a hold fires once per key); without a
        key every call can be held.
        """
        for rule in self.hold_rules:
            if rule['step'] == step and rule['server'] in (
                    None, server['id'], server['name']) and (
                    key is None or key not in rule['seen']):
                if key is not None:
                    rule['seen'].add(key)
                self.held.append({'server_id': server['id'],
                                  'server_name': server['name'],
                                  'step': step, 'since': time.time(),
                                  'proceed': proceed})
                return
        proceed()

    def release(self, step=None, server=None):
        """Drop the matching hold rules and resume their waiters.

        server is an ID or a name; a rule for any server goes too. Omit
        both to release everything; return how many resumed.
        """
        names = {server}
        for srv in self.servers.values():
            if server in (srv['id'], srv['name']):
                names.update((srv['id'], srv['name']))

        def matches(entry, *servers):
            return step in (None, entry['step']) and (
                server is None or bool(names.intersection(servers)))
        self.hold_rules[:] = [r for r in self.hold_rules
                              if not matches(r, r['server'] or server)]
        waiting = [w for w in self.held
                   if matches(w, w['server_id'], w['server_name'])]
        for waiter in waiting:
            self.held.remove(waiter)
        for waiter in waiting:
            waiter['proceed']()
        return len(waiting)

    def held_view(self):
        return [{'server_id': w['server_id'], 'server_name': w['server_name'],
                 'step': w['step'], 'since': w['since']} for w in self.held]

    def record_capture(self, server_id, image_id, driver, started,
                       point_in_time=None, ended=None, task_state=None,
                       **extra):
        """Record one disk copy; return the entry (set 'ended' later).

        Times are time.time() values: started (copy begins),
        point_in_time (its content is fixed) and ended (the disk may be
        written again).
        """
        entry = dict(extra, server_id=server_id, image_id=image_id,
                     driver=driver, started=started,
                     point_in_time=point_in_time, ended=ended,
                     task_state=task_state)
        self.captures.append(entry)
        return entry

    def later(self, name_or_delay, func, *args):
        """Run func(*args) under the lock after a named duration."""
        if isinstance(name_or_delay, str):
            delay = self.duration(name_or_delay)
        else:
            delay = name_or_delay

        def locked():
            with self.lock:
                func(*args)
        return self.timers.call_later(delay, locked)

    def record(self, resource, rid, field, old, new):
        self.log.append({
            'seq': len(self.log) + 1, 'resource': resource, 'id': rid,
            'field': field, 'old': old, 'new': new,
            'time': time.time(), 'monotonic': time.monotonic(),
        })

    def update_server(self, server, **changes):
        """Change server fields, logging every state and status change."""
        old_status = server_status(server)
        for field, value in changes.items():
            old = server.get(field)
            server[field] = value
            if field in ('task_state', 'vm_state', 'power_state') and (
                    old != value):
                self.record('server', server['id'], field, old, value)
        new_status = server_status(server)
        if new_status != old_status:
            self.record('server', server['id'], 'status', old_status,
                        new_status)
        server['updated'] = time.time()

    def set_image_status(self, image, status):
        old = image['status']
        if old != status:
            image['status'] = status
            image['updated_at'] = time.time()
            self.record('image', image['id'], 'status', old, status)

    def delete_image(self, image_id):
        image = self.images.pop(image_id, None)
        if image is not None:
            self.record('image', image_id, 'status', image['status'],
                        'deleted')
            image['status'] = 'deleted'
            image['deleted_at'] = time.time()
            self.deleted_images[image_id] = image
        return image

    def visible_server(self, server_id, ctx, allow_deleted=False):
        """Return the server if the caller may see it, else None.

        As in nova 34, a deleted server is gone from GET /servers/{id}
        at once, even for an admin; only the admin list with
        ``deleted=True`` (and, when allow_deleted, the instance actions
        from microversion 2.21) still show it.
        """
        server = self.servers.get(server_id)
        if server is None:
            return None
        if not ctx['is_admin'] and server['project_id'] != ctx['project_id']:
            return None
        if server['vm_state'] == 'deleted' and not allow_deleted:
            return None
        return server
