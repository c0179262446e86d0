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

"""Tests of the cliff columns the commands print (osc_snapphase.v1.common)."""

from openstackclient.compute.v2 import server as server_v2
import testtools

from osc_snapphase.v1 import common


class TestPowerStateColumn(testtools.TestCase):

    def test_power_state_column_people_and_machines(self):
        column = common.PowerStateColumn(1)
        self.assertEqual('Running', column.human_readable())
        self.assertEqual(1, column.machine_readable())

    def test_power_state_column_as_core(self):
        # The same words as `openstack server show`, for every state Nova
        # reports and for a value it does not know.
        for value in (0, 1, 3, 4, 6, 7, 9, None):
            ours = common.PowerStateColumn(value)
            core = server_v2.PowerStateColumn(value)
            self.assertEqual(core.human_readable(), ours.human_readable(),
                             value)
            self.assertEqual(core.machine_readable(),
                             ours.machine_readable(), value)
