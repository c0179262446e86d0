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

"""Test of the subprocess fixture: start-up, files and clean stop."""

import os

import testtools

from osc_snapphase.tests import fixture


class TestFixture(testtools.TestCase):

    def test_start_and_stop(self):
        sim = fixture.SimulatorFixture(durations={'snapshot': 0.1})
        self.useFixture(sim)
        self.assertTrue(os.path.exists(sim.clouds_yaml))
        self.assertEqual(sim.auth_url, sim.env['OS_AUTH_URL'])
        self.assertTrue(sim.env['OS_PASSWORD'].startswith(
            'sim-secret-password-'))
        self.assertEqual(0.1, sim.control.state()['durations']['snapshot'])
        self.assertEqual(0, sim.stop())
        # What the simulator wrote went with it.
        self.assertFalse(os.path.exists(sim.clouds_yaml))
