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

"""The real openstack CLI against the simulator's Cinder and volume-backed
servers (boot from volume, image-create, backup)."""

import json

from osc_snapphase.tests.functional import base

WAIT = 60


class TestSimulatorCinder(base.TestCase):

    def snapshot_ids(self, image):
        properties = image.get('properties', image)
        return [m['snapshot_id'] for m in json.loads(
            properties['block_device_mapping'])]

    def wait_snapshot(self, snapshot_id, status):
        self.control.wait_for(lambda s: any(
            v['id'] == snapshot_id and v['status'] == status
            for v in s['volume_snapshots']), timeout=WAIT)

    def test_boot_from_volume_and_image_create(self):
        volume = self.openstack('volume', 'create', '--size', '1',
                                '--image', 'cirros', 'bootvol',
                                '-f', 'json').json()
        self.assertEqual(('bootvol', 1, True), (
            volume['name'], volume['size'], volume['bootable']))
        self.control.wait_for(lambda s: self.control.volume(
            volume['id'])['status'] == 'available', timeout=WAIT)
        server = self.openstack('server', 'create', '--flavor', 'm1.tiny',
                                '--volume', 'bootvol', '--nic', 'none',
                                '--wait', 'bfv1', '-f', 'json').json()
        self.assertEqual('ACTIVE', server['status'])
        self.assertEqual('N/A (booted from volume)', server['image'])
        self.assertEqual([volume['id']],
                         [v['id'] for v in server['volumes_attached']])
        shown = self.openstack('volume', 'show', 'bootvol', '-f',
                               'json').json()
        self.assertEqual('in-use', shown['status'])
        self.assertEqual([(server['id'], '/dev/vda')], [
            (a['server_id'], a['device']) for a in shown['attachments']])

        # The snapshot stays 'creating' while the test holds it.
        self.hold('volume_snapshot', 'bfv1')
        image = self.image_create('bfv1', 'snap1')
        self.assertEqual(('active', 0, 'raw'), (
            image['status'], image['size'], image['disk_format']))
        self.assertNotIn('instance_uuid', image['properties'])
        self.assertEqual('True', image['properties']['bdm_v2'])
        (snapshot_id,) = self.snapshot_ids(image)
        self.control.wait_held('volume_snapshot', 'bfv1', timeout=WAIT)
        listed = self.openstack('volume', 'snapshot', 'list', '-f',
                                'json').json()
        self.assertEqual([(snapshot_id, 'snapshot for snap1', 'creating')],
                         [(s['ID'], s['Name'], s['Status']) for s in listed])
        # Nova sets no task state for a volume-backed image-create.
        self.assertEqual([None], [e['new'] for e in self.task_log(
            server['id'])][-1:])
        self.assertIsNone(self.control.server(server['id'])[
            'OS-EXT-STS:task_state'])
        self.assertEqual(1, self.control.release('volume_snapshot', 'bfv1'))
        self.wait_snapshot(snapshot_id, 'available')
        snapshot = self.openstack('volume', 'snapshot', 'show', snapshot_id,
                                  '-f', 'json').json()
        self.assertEqual(('available', volume['id']), (
            snapshot['status'], snapshot['volume_id']))
        (capture,) = self.control.captures(server['id'])
        self.assertEqual((image['id'], 'cinder'), (capture['image_id'],
                                                   capture['driver']))

    def test_block_device_and_boot_from_volume_options(self):
        volume = self.openstack('volume', 'create', '--size', '1',
                                '--image', 'cirros', 'rootvol',
                                '-f', 'json').json()
        self.control.wait_for(lambda s: self.control.volume(
            volume['id'])['status'] == 'available', timeout=WAIT)
        first = self.openstack(
            'server', 'create', '--flavor', 'm1.tiny', '--nic', 'none',
            '--block-device', 'source_type=volume,uuid=%s,boot_index=0'
            % volume['id'], 'vm-bd', '-f', 'json').json()
        second = self.openstack(
            'server', 'create', '--flavor', 'm1.tiny', '--nic', 'none',
            '--image', 'cirros', '--boot-from-volume', '2', 'vm-bfv',
            '-f', 'json').json()
        for server in (first, second):
            self.assertTrue(self.control.server(server['id'])[
                'volume_backed'])
        volumes = self.openstack('volume', 'list', '--long', '-f',
                                 'json').json()
        by_size = {v['Size']: (v['Status'], v['Bootable']) for v in volumes}
        self.assertEqual({1: ('in-use', True), 2: ('in-use', True)},
                         by_size)

    def test_backup_of_volume_backed_server_refused(self):
        server = self.create_server('bfv', volume_backed=True)
        result = self.openstack('server', 'backup', 'create', 'bfv',
                                '--name', 'b1', expect=1)
        self.assertIn('BadRequestException: 400', result.stderr)
        self.assertIn('Backup is not supported for volume-backed instances.',
                      result.stderr)
        self.assertEqual([], [i for i in self.control.state()['images']
                              if i['name'] == 'b1'])
        self.assertIsNone(self.control.server(server['id'])[
            'OS-EXT-STS:task_state'])

    def test_volume_snapshot_faults(self):
        self.create_server('bfv-err', volume_backed=True)
        self.create_server('bfv-gone', volume_backed=True)
        self.control.add_fault('volume_snapshot', 'volume_snapshot_error',
                               server='bfv-err')
        self.control.add_fault('volume_snapshot', 'volume_snapshot_deleted',
                               server='bfv-gone')
        (failed,) = self.snapshot_ids(self.image_create('bfv-err', 'e1'))
        (gone,) = self.snapshot_ids(self.image_create('bfv-gone', 'g1'))
        self.wait_snapshot(failed, 'error')
        self.control.wait_for(lambda s: gone not in [
            v['id'] for v in s['volume_snapshots']], timeout=WAIT)
        shown = self.openstack('volume', 'snapshot', 'show', failed,
                               '-f', 'json').json()
        self.assertEqual('error', shown['status'])
        missing = self.openstack('volume', 'snapshot', 'show', gone,
                                 expect=1)
        self.assertIn(gone, missing.stderr)
