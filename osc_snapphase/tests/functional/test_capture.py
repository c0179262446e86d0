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

"""Capture truth against the simulator's record of each disk copy.

For every Nova driver order the simulator plays, the disk copy is held
until the CLI has polled it a few times; then ``--wait-phase snapshot``
and ``watch --until disk-safe`` must not have returned, must return after
the copy's end and after the first thing the API shows that proves the
copy is over (the snapshot image turning ``saving``, or ``active`` for an
RBD direct snapshot), and on the first read that shows it: at most one
poll's read of the image (the proving resource; ``--wait-phase`` reads it
once more to print it) and of the server arrives after the proof, so no
poll follows. These are events in the simulator's request log, not a
wall-clock bound; how fast the answer comes is the benchmark's figure
(``osc_snapphase/tests/bench``, delay section). ``task-state show`` during
the copy must say that disk writes are not safe.
"""

import os

import fixtures
from testtools import content
import yaml

from osc_snapphase.tests.functional import base

# Steps the tests do not need to see are short; the copy is held.
DURATIONS = {'pending': 0.1, 'snapshot': 0.3, 'backup': 0.3,
             'pending_upload': 0.1, 'copy': 0.3, 'rbd_snapshot': 0.1,
             'flatten': 0.3, 'uploading': 5.0}
PROOF_STATUSES = ('saving', 'importing', 'active')
IMAGE_GET = 'GET /image/v2/images/{id}'
# Orders whose copy the product must judge; the proof each one gives.
ORDERS = {
    'xenserver': 'saving',
    'libvirt-file': 'saving',
    'libvirt-lvm': 'saving',
    'libvirt-rbd': 'active',
    'libvirt-rbd-fallback': 'saving',
    'vmware': 'saving',
}


class CaptureTestCase(base.TestCase):

    durations = DURATIONS

    def proof(self, image_id):
        """The log entry of the image's first proving status change."""
        for entry in self.control.log(resource_id=image_id):
            if entry['field'] == 'status' and entry['new'] in PROOF_STATUSES:
                return entry
        self.fail('image %s never went %s' % (image_id, PROOF_STATUSES))

    def reads_after(self, entry, key, resource_id):
        """The reads of one resource that arrived after a logged change.

        A read that arrived before the change and was answered after it
        (in flight at the proof) is not one; the simulator takes a
        request's time on arrival, before it reads its state under the
        lock the change was made under, so every read counted here saw
        the change. Other resources' reads (another CLI's) do not count.
        """
        return [r for r in self.control.requests()['requests']
                if r['key'] == key and r['monotonic'] >= entry['monotonic']
                and r['path'].rstrip('/').endswith('/' + resource_id)]

    def assert_answered_on(self, result, label, entry, proving, others,
                           output_reads=0):
        """Answered from the first read that saw ``entry``; polled no more.

        ``proving``: (key, id) of the resource whose read shows the proof:
        at most one poll's read of it arrived after the proof, plus
        ``output_reads`` (``--wait-phase`` reads the image once more to
        print it). ``others``: the other resources each poll reads: at
        most one read each (the poll that saw the proof may read them
        after it), so no later poll.
        """
        latency = result.output_at - entry['time']
        # The figure is the benchmark's (osc_snapphase/tests/bench, delay
        # section); a loaded machine stretches it, so it is only shown.
        self.addDetail('latency', content.text_content(
            '%s: answered %.3f s after the proof (%s %s -> %s)' % (
                label, latency, entry['resource'], entry['id'],
                entry['new'])))
        # Never before the proof.
        self.assertGreaterEqual(latency, 0, label)
        allowed = [(proving, 1 + output_reads)] + [(o, 1) for o in others]
        for (key, resource_id), most in allowed:
            reads = self.reads_after(entry, key, resource_id)
            self.assertLessEqual(
                len(reads), most, '%s: %d reads of %s after the proof: the '
                'first one that showed it was not answered on: %s' % (
                    label, len(reads), resource_id, reads))

    def copy_of(self, server_id):
        captures = self.control.captures(server_id)
        self.assertEqual(1, len(captures), captures)
        return captures[0]

    def hold_copy_until_polled(self, proc, server_id, key=IMAGE_GET):
        """With the copy held, let the CLI poll, check it still waits."""
        self.control.wait_held('copy', server=server_id, timeout=base.WAIT)
        self.wait_requests(key, self.request_count(key) + 3, timeout=base.WAIT)
        self.assertIsNone(proc.poll(), 'returned during the disk copy')
        self.control.release('copy', server=server_id)

    def assert_returned_on_proof(self, result, image_id, server_id, order,
                                 output_reads=0):
        entry = self.proof(image_id)
        self.assertEqual(ORDERS[order], entry['new'])
        copy = self.copy_of(server_id)
        self.assertIsNotNone(copy['ended'])
        self.assertIsNotNone(copy['point_in_time'])
        # Never before the copy's point in time, nor before it ended.
        self.assertGreaterEqual(result.output_at, copy['point_in_time'])
        self.assertGreaterEqual(result.output_at, copy['ended'])
        self.assert_answered_on(result, order, entry, (IMAGE_GET, image_id),
                                [(base.GET_SERVER, server_id)],
                                output_reads)

    def clouds_yaml_with(self, **keys):
        """A copy of the simulator's clouds.yaml with keys in each cloud."""
        with open(self.sim.clouds_yaml) as stream:
            config = yaml.safe_load(stream)
        for cloud in config['clouds'].values():
            cloud.update(keys)
        path = os.path.join(self.useFixture(
            fixtures.TempDir()).path, 'clouds.yaml')
        with open(path, 'w') as stream:
            yaml.safe_dump(config, stream)
        return path


class TestWaitPhaseSnapshot(CaptureTestCase):
    """``server image create --wait-phase snapshot`` in every order."""

    def wait_phase(self, order):
        server = self.create_server('vm1', driver=order)
        self.hold('copy', server=server['id'])
        proc = self.start('server', 'image', 'create', server['id'],
                          '--name', 'snap', '--wait-phase', 'snapshot',
                          '-f', 'json')
        self.hold_copy_until_polled(proc, server['id'])
        result = self.finish_timed(proc)
        data = result.json()
        self.assert_returned_on_proof(result, data['id'], server['id'],
                                      order, output_reads=1)
        self.assertEqual(('complete', 'image-status'),
                         (data['capture'], data['capture_model']))
        self.assertIn(data['id'], data['capture_evidence'])
        self.assertIn(ORDERS[order], data['capture_evidence'])
        return data

    def test_xenserver(self):
        self.wait_phase('xenserver')

    def test_libvirt_file(self):
        self.wait_phase('libvirt-file')

    def test_libvirt_lvm(self):
        self.wait_phase('libvirt-lvm')

    def test_libvirt_rbd(self):
        self.wait_phase('libvirt-rbd')

    def test_libvirt_rbd_fallback(self):
        self.wait_phase('libvirt-rbd-fallback')

    def test_vmware(self):
        self.wait_phase('vmware')

    def test_backup_libvirt_file(self):
        server = self.create_server('vm1', driver='libvirt-file')
        self.hold('copy', server=server['id'])
        proc = self.start('server', 'backup', 'create', server['id'],
                          '--name', 'bak', '--type', 'daily', '--rotate',
                          '2', '--wait-phase', 'snapshot', '-f', 'json')
        self.hold_copy_until_polled(proc, server['id'])
        result = self.finish_timed(proc)
        data = result.json()
        self.assert_returned_on_proof(result, data['id'], server['id'],
                                      'libvirt-file', output_reads=1)


class TestWatchDiskSafe(CaptureTestCase):
    """``watch --until disk-safe`` started after a plain image create."""

    def watch(self, order):
        server = self.create_server('vm1', driver=order)
        self.hold('copy', server=server['id'])
        image = self.image_create(server['id'])
        proc = self.start('server', 'task-state', 'watch', server['id'],
                          '--until', 'disk-safe', '-f', 'json')
        self.hold_copy_until_polled(proc, server['id'])
        result = self.finish_timed(proc)
        self.assert_returned_on_proof(result, image['id'], server['id'],
                                      order)
        rows = result.json()
        self.assertEqual('complete', rows[-1]['Capture'])
        self.assertNotIn('complete', [r['Capture'] for r in rows[:-1]])
        return rows

    def test_xenserver(self):
        self.watch('xenserver')

    def test_libvirt_file(self):
        rows = self.watch('libvirt-file')
        # The second image_pending_upload (the copy) is seen, not safe.
        self.assertIn(('image_pending_upload', 'in-progress'),
                      [(r['Task State'], r['Capture']) for r in rows])

    def test_libvirt_rbd(self):
        rows = self.watch('libvirt-rbd')
        # RBD direct: image_uploading with a queued image is no proof.
        self.assertIn(('image_uploading', 'in-progress'),
                      [(r['Task State'], r['Capture']) for r in rows])


class TestShowDuringCopy(CaptureTestCase):
    """``task-state show`` while the copy is held: never safe."""

    def show_held(self, order, task_state):
        server = self.create_server('vm1', driver=order)
        self.hold('copy', server=server['id'])
        image = self.image_create(server['id'])
        self.control.wait_held('copy', server=server['id'], timeout=base.WAIT)
        data = self.openstack('server', 'task-state', 'show', server['id'],
                              '-f', 'json').json()
        self.assertEqual(task_state, data['task_state'])
        self.assertIs(False, data['disk_writes_safe'])
        self.assertEqual('in-progress', data['capture'])
        self.assertIn(image['id'], data['capture_evidence'])
        self.assertIs(False, data['image_create_allowed'])
        self.control.release('copy', server=server['id'])
        self.control.wait_for(lambda state: any(
            i['id'] == image['id'] and i['status'] in PROOF_STATUSES
            for i in state['images']), timeout=base.WAIT)
        data = self.openstack('server', 'task-state', 'show', server['id'],
                              '-f', 'json').json()
        self.assertIs(True, data['disk_writes_safe'])
        # complete while the upload goes on; none once it has ended.
        self.assertIn(data['capture'], ('complete', 'none'))

    def test_libvirt_file_second_pending_upload(self):
        self.show_held('libvirt-file', 'image_pending_upload')

    def test_libvirt_rbd_uploading(self):
        self.show_held('libvirt-rbd', 'image_uploading')

    def test_bounce_is_not_safe(self):
        # libvirt's first image_uploading (the bounce), image queued.
        server = self.create_server('vm1', driver='libvirt-file')
        self.hold('bounce', server=server['id'])
        self.image_create(server['id'])
        self.control.wait_held('bounce', server=server['id'],
                               timeout=base.WAIT)
        data = self.openstack('server', 'task-state', 'show', server['id'],
                              '-f', 'json').json()
        self.assertEqual(('image_uploading', 'in-progress', False),
                         (data['task_state'], data['capture'],
                          data['disk_writes_safe']))


class TestXenServerModel(CaptureTestCase):
    """The seed's model, by explicit choice only; the output says so."""

    def test_wait_phase_by_environment(self):
        server = self.create_server('vm1', driver='xenserver')
        self.hold('copy', server=server['id'])
        # Held after the copy: the image stays queued, no proof from it.
        self.hold('pending_upload', server=server['id'])
        proc = self.start('server', 'image', 'create', server['id'],
                          '--name', 'snap', '--wait-phase', 'snapshot',
                          '-f', 'json',
                          env={'OS_SNAPPHASE_CAPTURE_MODEL': 'xenserver'})
        self.hold_copy_until_polled(proc, server['id'],
                                    key=base.GET_SERVER)
        result = self.finish_timed(proc)
        data = result.json()
        self.assertEqual(('complete', 'xenserver'),
                         (data['capture'], data['capture_model']))
        left_snapshot, = [e for e in self.task_log(server['id'])
                          if e['old'] == 'image_snapshot'][:1]
        # The proof is the server's task state: its read shows it.
        self.assert_answered_on(result, 'xenserver model', left_snapshot,
                                (base.GET_SERVER, server['id']), [])
        # Judged by the task state alone: the image is still queued.
        self.assertEqual('queued', self.control.image(data['id'])['status'])
        self.assertEqual('image_pending_upload', self.control.server(
            server['id'])['OS-EXT-STS:task_state'])

    def test_show_by_option_and_clouds_yaml(self):
        server = self.create_server('vm1', driver='libvirt-file')
        self.hold('copy', server=server['id'])
        self.image_create(server['id'])
        self.control.wait_held('copy', server=server['id'], timeout=base.WAIT)
        # The seed's model is wrong here, and says which model judged.
        data = self.openstack('--os-snapphase-capture-model', 'xenserver',
                              'server', 'task-state', 'show', server['id'],
                              '-f', 'json').json()
        self.assertEqual(('complete', 'xenserver', True),
                         (data['capture'], data['capture_model'],
                          data['disk_writes_safe']))
        path = self.clouds_yaml_with(snapphase_capture_model='xenserver')
        data = self.openstack('server', 'task-state', 'show', server['id'],
                              '-f', 'json',
                              env={'OS_CLIENT_CONFIG_FILE': path}).json()
        self.assertEqual('xenserver', data['capture_model'])
        # The option wins over clouds.yaml.
        data = self.openstack('--os-snapphase-capture-model', 'image-status',
                              'server', 'task-state', 'show', server['id'],
                              '-f', 'json',
                              env={'OS_CLIENT_CONFIG_FILE': path}).json()
        self.assertEqual(('in-progress', 'image-status', False),
                         (data['capture'], data['capture_model'],
                          data['disk_writes_safe']))

    def test_unknown_model_is_a_usage_error(self):
        server = self.create_server('vm1')
        result = self.openstack('--os-snapphase-capture-model', 'guess',
                                'server', 'task-state', 'show',
                                server['id'], expect=2)
        self.assertIn("unknown capture model 'guess'", result.stderr)
