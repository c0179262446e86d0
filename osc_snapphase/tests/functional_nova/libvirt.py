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

"""The real Nova with nova's own ``LibvirtDriver`` over nova's fakelibvirt.

:class:`LibvirtNovaCloud` is :class:`~.cloud.NovaCloud` whose compute
service runs ``nova.virt.libvirt.LibvirtDriver`` (set up the way
``nova/tests/functional/libvirt/base.py`` does: ``LibvirtFixture``,
``LibvirtImageBackendFixture``, a fake libvirt connection per host).  The
driver's ``snapshot()`` runs unchanged; only what would touch real storage
is replaced, at the lowest level that keeps nova's own code in the path:

``file``
    live snapshot of a qcow2 root disk (the real ``imagebackend.Qcow2``):
    nova's ``Image.direct_snapshot`` refuses after ``image_uploading`` was
    written (the "bounce", which the test can hold too), then
    ``_live_snapshot`` runs for real; the block-copy mirror
    (``blockRebase``) reports "not complete" through ``blockJobInfo`` until
    the test releases it; the point in time is the ``blockJobAbort`` after
    the mirror, which also ends the copy.  As real libvirt does, the domain
    stays (transient) while its persistent definition is removed.
``lvm``
    ``images_type=lvm``, cold snapshot: the real ``imagebackend.Lvm`` (with
    ``lvm.volume_info`` answered), ``managedSave`` is the point in time,
    ``Lvm.snapshot_extract`` (``images.convert_image``) is held, the copy
    ends when the guest is resumed (``createWithFlags``).
``rbd``
    ``images_type=rbd``, direct snapshot: the real ``imagebackend.Rbd`` over
    a :class:`FakeRBDDriver` (the real ``RBDDriver`` minus the cluster).  The
    disk is a clone of the Glance image, so ``direct_snapshot`` goes on:
    ``create_snap`` of the disk is the point in time, ``flatten`` (the data
    copy) is held, the copy ends when it returns.
``rbd-fallback``
    as ``rbd`` but the disk is no clone and the base image has no RBD
    location, so nova's ``direct_snapshot`` raises ``ImageUnacceptable`` and
    the driver falls back: ``managedSave`` (point in time), the held
    ``Rbd.snapshot_extract`` (``qemu-img convert`` from RBD), resume.

Every moment is recorded with ``time.time()`` in :class:`CaptureRecord`
(shared with the test, which also releases the holds).  The Glance test
double is hooked so that an upload first turns the image ``saving`` (as
real Glance does on ``PUT /file``), records that moment, waits on the
``upload`` hold, then stores the data and turns it ``active``; an update
that adds a location (RBD direct) records the moment the image is
``active``.
"""

import io
import os
import threading
import time
from unittest import mock

import fixtures

from osc_snapphase.tests.functional_nova import cloud

from nova import exception as nova_exception  # noqa: E402
from nova.storage import rbd_utils  # noqa: E402
from nova.tests import fixtures as nova_fixtures  # noqa: E402
from nova.tests.fixtures import libvirt as fakelibvirt  # noqa: E402
from nova.virt.libvirt import utils as libvirt_utils  # noqa: E402

BACKENDS = ('file', 'lvm', 'rbd', 'rbd-fallback')
VOLUME_GROUP = 'nova-vg'
RBD_POOL = 'vms'
GLANCE_POOL = 'images'
FSID = 'b8e9c2b2-4e1c-4c35-9b2a-1c0a5e7f0c11'
#: libvirt's VIR_DOMAIN_BLOCK_JOB_TYPE_COPY (fakelibvirt does not define it)
BLOCK_JOB_COPY = getattr(fakelibvirt, 'VIR_DOMAIN_BLOCK_JOB_TYPE_COPY', 2)
#: Longest time a hold waits for the test before the driver goes on.
HOLD_TIMEOUT = 120.0


class CaptureRecord(object):
    """Wall-clock moments of one capture, and the holds the test releases.

    ``times`` keeps the first ``time.time()`` of each mark: ``copy_started``,
    ``point_in_time``, ``copy_ended``, ``glance_saving``, ``glance_active``
    and some details (``suspended``, ``resumed``, ``direct_refused``,
    ``extract_started``/``extract_ended``...).  ``reached[name]`` is set when
    the driver waits in hold ``name`` (``copy`` or ``upload``);
    :meth:`release` lets it go on.
    """

    HOLDS = ('bounce', 'copy', 'upload')
    #: holds used unless the test asks for more (:meth:`enable`)
    DEFAULT_HOLDS = ('copy', 'upload')

    def __init__(self):
        self.lock = threading.Lock()
        self.times = {}
        self.log = []
        self.reached = {name: threading.Event() for name in self.HOLDS}
        self.gates = {name: threading.Event() for name in self.HOLDS}
        self.aborted = threading.Event()
        self.enabled = set(self.DEFAULT_HOLDS)
        # state of the capture in progress
        self.mirroring = False
        self.suspended = False

    def mark(self, name, detail=''):
        now = time.time()
        with self.lock:
            self.times.setdefault(name, now)
            self.log.append((now, name, detail))
        return now

    def get(self, name):
        with self.lock:
            return self.times.get(name)

    def enable(self, name):
        """Also hold at ``name`` (``bounce``: the failed direct snapshot)."""
        self.enabled.add(name)

    def hold(self, name):
        """Wait (in the driver) until the test releases hold ``name``."""
        if name not in self.enabled:
            return
        self.mark('hold_%s' % name)
        self.reached[name].set()
        deadline = time.monotonic() + HOLD_TIMEOUT
        while not self.gates[name].wait(0.05):
            if self.aborted.is_set() or time.monotonic() > deadline:
                break
        self.mark('released_%s' % name)

    def is_held(self, name):
        return self.reached[name].is_set() and not self.gates[name].is_set()

    def wait_reached(self, name, timeout=60.0):
        if not self.reached[name].wait(timeout):
            raise AssertionError('the capture never reached hold %s; '
                                 'record: %s' % (name, self.describe()))

    def release(self, name=None):
        for hold, gate in self.gates.items():
            if name is None or hold == name:
                gate.set()

    def abort(self):
        self.aborted.set()
        self.release()

    def describe(self, origin=None):
        with self.lock:
            log = list(self.log)
        if not log:
            return '(nothing recorded)'
        origin = log[0][0] if origin is None else origin
        return '\n'.join('%+9.3f s  %s %s' % (t - origin, name, detail)
                         for t, name, detail in log)


class FakeRBDDriver(rbd_utils.RBDDriver):
    """nova's ``RBDDriver`` with the Ceph cluster replaced by a record.

    ``parse_url`` and the constructor's option handling are nova's own.  With
    ``clone_of_glance`` the VM disks are clones of Glance images (the normal
    Ceph set-up, direct snapshots work); without it ``parent_info`` says the
    disk has no parent (direct snapshot refused, unless Glance has an RBD
    location for the base image, which the Glance double never has).
    """

    record = None
    clone_of_glance = True

    def _check_for_import_failure(self):
        pass

    def get_fsid(self):
        return FSID

    def get_mon_addrs(self):
        return ['127.0.0.1'], ['6789']

    def parent_info(self, volume, pool=None):
        if not self.clone_of_glance:
            raise nova_exception.ImageUnacceptable(
                image_id=volume, reason='no parent (fake rbd)')
        return GLANCE_POOL, 'base-image', 'snap'

    def create_snap(self, volume, name, pool=None, protect=False):
        rec = self.record
        if name == 'snap':
            rec.mark('glance_snap', volume)
            return
        # The snapshot of the VM disk: the disk's content is fixed here.
        rec.mark('copy_started', 'rbd create_snap %s@%s' % (volume, name))
        rec.mark('point_in_time', 'rbd create_snap')

    def clone(self, image_location, dest_name, dest_pool=None):
        self.record.mark('rbd_clone', dest_name)

    def flatten(self, volume, pool=None):
        rec = self.record
        rec.mark('flatten_started', volume)
        rec.hold('copy')
        rec.mark('copy_ended', 'rbd flatten done')

    def remove_snap(self, volume, name, ignore_errors=False, pool=None,
                    force=False):
        self.record.mark('rbd_remove_snap', '%s@%s' % (volume, name))

    def destroy_volume(self, volume, pool=None):
        self.record.mark('rbd_destroy_volume', volume)


class _LibvirtHarness(cloud._NovaHarness):
    """The harness of :class:`~.cloud.NovaCloud` with a libvirt compute."""

    def _start_compute(self, host, cell_name=None):
        libvirt_cloud = self.cloud
        self.flags(compute_driver='libvirt.LibvirtDriver')
        self.flags(instances_path=self.useFixture(fixtures.TempDir()).path)
        libvirt_cloud.configure_storage(self)
        # As nova/tests/functional/libvirt/base.py ServersTestBase.setUp.
        self.useFixture(nova_fixtures.LibvirtImageBackendFixture())
        self.useFixture(nova_fixtures.CGroupsFixture())
        self.libvirt = self.useFixture(nova_fixtures.LibvirtFixture())
        self.useFixture(nova_fixtures.OSBrickFixture())
        for target, value in (
                ('nova.virt.libvirt.LibvirtDriver._create_image',
                 (False, False)),
                ('nova.virt.libvirt.LibvirtDriver._get_local_gb_info',
                 {'total': 128, 'used': 44, 'free': 84}),
                ('nova.virt.libvirt.driver.libvirt_utils.is_valid_hostname',
                 True),
                ('nova.privsep.utils.supports_direct_io', True),
                ('nova.virt.libvirt.host.Host.get_online_cpus',
                 set(range(16)))):
            self.useFixture(fixtures.MockPatch(target, return_value=value))
        self.useFixture(fixtures.MockPatch(
            'nova.virt.libvirt.driver.libvirt_utils.file_open',
            side_effect=lambda *a, **k: io.BytesIO(b'\0' * 4096)))
        libvirt_cloud.install_hooks(self)

        connection = fakelibvirt.Connection(
            'qemu:///system', version=fakelibvirt.FAKE_LIBVIRT_VERSION,
            hv_version=fakelibvirt.FAKE_QEMU_VERSION,
            host_info=fakelibvirt.HostInfo(cpu_nodes=2, cpu_sockets=1,
                                           cpu_cores=2, cpu_threads=2),
            hostname=host)
        with mock.patch('nova.virt.libvirt.host.Host.get_connection',
                        return_value=connection), \
                mock.patch('nova.virt.node.get_local_node_uuid',
                           return_value='5b5e3a5a-9c4a-4f6f-8c2e-%012d'
                           % len(self.computes)):
            compute = self.start_service('compute', host=host,
                                         cell_name=cell_name)
            compute.driver._host.get_connection = lambda: connection
            compute.driver._host.get_node_uuid()
        self.computes[host] = compute
        return compute


class LibvirtNovaCloud(cloud.NovaCloud):
    """:class:`~.cloud.NovaCloud` with nova's LibvirtDriver as compute.

    :param backend: one of :data:`BACKENDS`.
    ``record`` is the :class:`CaptureRecord` of the captures in this cloud
    (one snapshot per test).
    """

    def __init__(self, backend='file', workdir=None):
        if backend not in BACKENDS:
            raise ValueError('unknown backend %r' % backend)
        super().__init__(workdir=workdir)
        self.backend = backend
        self.record = CaptureRecord()
        #: (time.time() at start, at end, service, method, path, token) of
        #: every Nova and Glance API request
        self.token_log = []

    def _setUp(self):
        self.addCleanup(self.record.abort)
        self.useFixture(fixtures.MonkeyPatch(
            'osc_snapphase.tests.functional_nova.cloud._NovaHarness',
            _LibvirtHarness))
        super()._setUp()
        self.install_glance_hook()
        self.nova_http.app = _TokenLog(self.nova_http.app, 'nova',
                                       self.token_log)
        self.glance_http.app = _TokenLog(self.glance_http.app, 'glance',
                                         self.token_log)
        # Let a held driver go before the services stop.
        self.addCleanup(self.record.abort)

    # -- storage configuration and hooks (called inside the harness) --

    def configure_storage(self, harness):
        if self.backend == 'lvm':
            harness.flags(images_type='lvm', images_volume_group=VOLUME_GROUP,
                          group='libvirt')
        elif self.backend in ('rbd', 'rbd-fallback'):
            harness.flags(images_type='rbd', images_rbd_pool=RBD_POOL,
                          group='libvirt')
            harness.flags(force_raw_images=True)

    def install_hooks(self, harness):
        rec = self.record
        backend = self.backend
        patch = harness.useFixture

        real_find_disk = libvirt_utils.find_disk

        def find_disk(guest):
            # The root disk as libvirt would describe it for this backend
            # (LibvirtImageBackendFixture writes every disk as a raw file).
            if backend == 'lvm':
                return ('/dev/%s/%s_disk' % (VOLUME_GROUP, guest.uuid), 'raw')
            if backend in ('rbd', 'rbd-fallback'):
                return ('rbd:%s/%s_disk' % (RBD_POOL, guest.uuid), 'raw')
            path, _format = real_find_disk(guest)
            return path, 'qcow2'

        patch(fixtures.MonkeyPatch(
            'nova.virt.libvirt.utils.find_disk', find_disk))

        # The snapshot's root disk: nova's own image backend classes (the
        # boot used LibvirtImageBackendFixture's mocks).
        from nova.virt.libvirt import imagebackend
        classes = {'qcow2': imagebackend.Qcow2, 'lvm': imagebackend.Lvm,
                   'rbd': imagebackend.Rbd}

        def by_libvirt_path(backend_self, instance, path, image_type=None):
            return classes[image_type](instance=instance, path=path)

        patch(fixtures.MonkeyPatch(
            'nova.virt.libvirt.imagebackend.Backend.by_libvirt_path',
            by_libvirt_path))
        real_image_direct = imagebackend.Image.direct_snapshot

        def image_direct_snapshot(disk, *args, **kwargs):
            # Qcow2 and Lvm: nova's Image.direct_snapshot raises
            # NotImplementedError, after image_uploading was written (the
            # "bounce").
            rec.mark('direct_snapshot', type(disk).__name__)
            rec.hold('bounce')
            try:
                return real_image_direct(disk, *args, **kwargs)
            except NotImplementedError:
                rec.mark('direct_refused', 'NotImplementedError')
                raise

        patch(fixtures.MonkeyPatch(
            'nova.virt.libvirt.imagebackend.Image.direct_snapshot',
            image_direct_snapshot))
        patch(fixtures.MonkeyPatch(
            'nova.virt.libvirt.storage.lvm.volume_info',
            lambda path: {'VG': VOLUME_GROUP,
                          'LV': os.path.basename(path)}))
        rbd_driver = type('FakeRBDDriver', (FakeRBDDriver,), {
            'record': rec, 'clone_of_glance': backend == 'rbd'})
        patch(fixtures.MonkeyPatch('nova.storage.rbd_utils.RBDDriver',
                                   rbd_driver))

        def convert_image(source, dest, in_format, out_format,
                          run_as_root=False, **kwargs):
            # Lvm/Rbd.snapshot_extract: qemu-img convert of the disk.
            rec.mark('copy_started', 'qemu-img convert %s' % source)
            rec.mark('extract_started', source)
            rec.hold('copy')
            rec.mark('extract_ended', dest)

        patch(fixtures.MonkeyPatch('nova.virt.images.convert_image',
                                   convert_image))

        # _live_snapshot's qemu-img helpers (file-backed disks).
        for target, value in (
                ('nova.virt.libvirt.utils.get_disk_size', 1 << 30),
                ('nova.virt.libvirt.utils.get_disk_backing_file', None)):
            patch(fixtures.MockPatch(target, return_value=value))
        patch(fixtures.MockPatch('nova.virt.libvirt.utils.create_image'))
        patch(fixtures.MockPatch('nova.privsep.path.chown'))
        patch(fixtures.MockPatch(
            'nova.virt.libvirt.utils.extract_snapshot',
            side_effect=lambda *a, **k: rec.mark('extracted', a[2])))
        # Real libvirt keeps a running domain as a transient one when its
        # persistent definition is removed for blockRebase; fakelibvirt
        # would delete it.
        patch(fixtures.MonkeyPatch(
            'nova.virt.libvirt.driver.LibvirtDriver.'
            '_delete_guest_configuration',
            lambda *a, **k: rec.mark('undefined_persistent')))

        # Every task-state write, for the record's log.
        from nova.objects import instance as instance_obj
        real_save = instance_obj.Instance.save

        def save(inst, *args, **kwargs):
            changed = 'task_state' in inst.obj_what_changed()
            result = real_save(inst, *args, **kwargs)
            if changed:
                rec.mark('task_state', str(inst.task_state))
            return result

        patch(fixtures.MonkeyPatch('nova.objects.instance.Instance.save',
                                   save))

        domain = 'nova.tests.fixtures.libvirt.Domain.'
        # The fakelibvirt methods themselves, taken before they are patched.
        real = type('RealDomain', (), {
            name: staticmethod(getattr(fakelibvirt.Domain, name))
            for name in ('blockRebase', 'blockJobInfo', 'blockJobAbort',
                         'managedSave', 'createWithFlags')})

        def block_rebase(dom, disk, base, bandwidth=0, flags=0):
            result = real.blockRebase(dom, disk, base, bandwidth, flags)
            rec.mirroring = True
            rec.mark('copy_started', 'blockRebase (mirror) %s' % disk)
            return result

        def block_job_info(dom, disk, flags):
            if rec.mirroring:
                if not rec.gates['copy'].is_set() and not rec.aborted.is_set():
                    if not rec.reached['copy'].is_set():
                        rec.mark('hold_copy', 'mirror reports not complete')
                        rec.reached['copy'].set()
                    return {'type': BLOCK_JOB_COPY, 'bandwidth': 0,
                            'cur': 1, 'end': 2}
                return {}
            return real.blockJobInfo(dom, disk, flags)

        def block_job_abort(dom, disk, flags=0):
            if rec.mirroring:
                rec.mark('point_in_time', 'blockJobAbort after the mirror')
                result = real.blockJobAbort(dom, disk, flags)
                rec.mirroring = False
                rec.mark('copy_ended', 'blockJobAbort returned')
                return result
            rec.mark('block_job_abort', 'no mirror (stale job cleanup)')
            return real.blockJobAbort(dom, disk, flags)

        def managed_save(dom, flags):
            result = real.managedSave(dom, flags)
            rec.suspended = True
            rec.mark('point_in_time', 'managedSave (guest suspended)')
            rec.mark('suspended')
            return result

        def create_with_flags(dom, flags):
            result = real.createWithFlags(dom, flags)
            if rec.suspended:
                rec.suspended = False
                rec.mark('copy_ended', 'guest resumed (createWithFlags)')
                rec.mark('resumed')
            return result

        for name, func in (('blockRebase', block_rebase),
                           ('blockJobInfo', block_job_info),
                           ('blockJobAbort', block_job_abort),
                           ('managedSave', managed_save),
                           ('createWithFlags', create_with_flags)):
            patch(fixtures.MonkeyPatch(domain + name, func))

        real_direct = imagebackend.Rbd.direct_snapshot

        def direct_snapshot(disk, *args, **kwargs):
            rec.mark('direct_snapshot')
            try:
                return real_direct(disk, *args, **kwargs)
            except nova_exception.ImageUnacceptable as e:
                rec.mark('direct_refused', str(e))
                raise

        patch(fixtures.MonkeyPatch(
            'nova.virt.libvirt.imagebackend.Rbd.direct_snapshot',
            direct_snapshot))

    def install_glance_hook(self):
        """Record when the snapshot image goes ``saving`` and ``active``."""
        store = self.glance
        rec = self.record
        real_update = store.update

        def update(context, image_id, metadata, data=None,
                   purge_props=False):
            if data is not None:
                # Real Glance: PUT /file turns the image 'saving' at once,
                # 'active' once every byte is stored.
                with store._lock:
                    image = store.images.get(image_id)
                    if image is not None and image['status'] == 'queued':
                        image['status'] = 'saving'
                        image['updated_at'] = cloud._now()
                        rec.mark('glance_saving', image_id)
                rec.hold('upload')
                data.read()
            with store._lock:
                result = real_update(context, image_id, metadata, data=data,
                                     purge_props=purge_props)
                if store.images.get(image_id, {}).get('status') == 'active':
                    rec.mark('glance_active', image_id)
            return result

        # nova.image.glance.API reaches the store through the stubbed
        # get_remote_image_service, so an instance attribute is enough.
        store.update = update
        self.addCleanup(vars(store).pop, 'update', None)

    def tokens(self):
        """The tokens of every Nova or Glance API request so far."""
        return {entry[5] for entry in list(self.token_log)}

    def server_reads(self, server_id, since=0.0, exclude_tokens=()):
        """GETs of the server since ``since`` (time.time()), other tokens.

        Each ``openstack`` process gets its own token, so this counts the
        polls of one CLI while another one polls the same server.
        """
        path = '/v2.1/servers/%s' % server_id
        exclude = set(exclude_tokens) | {self.admin_token}
        return sum(1 for start, _end, service, method, p, token
                   in list(self.token_log)
                   if start >= since and service == 'nova' and
                   method == 'GET' and p == path and token not in exclude)

    def requests_of(self, token, since=0.0, until=None):
        """(start, end, service, method, path) of one client's requests."""
        return [entry[:5] for entry in list(self.token_log)
                if entry[5] == token and entry[0] >= since and
                (until is None or entry[0] <= until)]

    def token_of(self, method, path):
        """The token of the first request ``method path``, or None."""
        for entry in list(self.token_log):
            if entry[3] == method and entry[4] == path:
                return entry[5]
        return None


class _TokenLog(object):
    """WSGI middleware: log each request with its ``X-Auth-Token``."""

    def __init__(self, app, service, log):
        self.app = app
        self.service = service
        self.log = log

    def __call__(self, environ, start_response):
        # Read before the app: Nova's urlmap moves PATH_INFO on.
        method = environ['REQUEST_METHOD']
        path = environ.get('PATH_INFO', '')
        token = environ.get('HTTP_X_AUTH_TOKEN')
        started = time.time()
        body = self.app(environ, start_response)
        self.log.append((started, time.time(), self.service, method, path,
                         token))
        return body
