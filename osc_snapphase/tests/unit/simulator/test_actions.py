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

"""The API status of a server's vm_state and task_state (in-process)."""

import testtools

from osc_snapphase.simulator import cloud as cloud_mod


class TestStatus(testtools.TestCase):
    """The API status of vm_state and task_state, as Nova's _STATE_MAP."""

    def test_status(self):
        for vm_state, task_state, status in (
                ('active', 'rebooting', 'REBOOT'),
                ('active', 'reboot_started_hard', 'HARD_REBOOT'),
                ('active', 'powering-off', 'ACTIVE'),
                ('stopped', 'rebooting_hard', 'SHUTOFF'),
                ('stopped', 'powering-on', 'SHUTOFF'),
                ('stopped', 'resize_prep', 'RESIZE')):
            self.assertEqual(status, cloud_mod.server_status(
                {'vm_state': vm_state, 'task_state': task_state}),
                (vm_state, task_state))
