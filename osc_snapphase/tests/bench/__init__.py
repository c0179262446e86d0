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

"""The benchmarks (``tox -e bench``, ``python -m osc_snapphase.tests.bench``).

They run the real ``openstack`` executable (through the tests' runner,
:mod:`osc_snapphase.tests.cli`) and the Python API against the bundled
simulator (the tests' :class:`~osc_snapphase.tests.fixture.SimulatorFixture`)
on 127.0.0.1. Each comparison is measured in the same run as what it is
compared with. One module per section, named for what it measures:

``startup``
    what the plugin adds to every ``openstack`` command
``delay``
    how soon the end of the disk capture is reported, per driver order
``load``
    the API requests of a watch: per phase, tokens, per number of servers
``cost``
    the CPU and memory of a long watch, and a soak
``fleet``
    the cost of a poll over 10 to 5,000 servers, incremental listing
    against a full listing

Method and a dated sample: doc/source/user/performance.rst.
"""
