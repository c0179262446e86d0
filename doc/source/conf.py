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

"""Sphinx configuration of the osc-snapphase documentation."""

# -- General configuration ---------------------------------------------------

extensions = [
    'openstackdocstheme',
    'sphinx.ext.autodoc',
    'cliff.sphinxext',
]

# openstackdocstheme: these are used for the "report a bug" and source
# links; the build needs neither a git remote nor network access.
openstackdocs_repo_name = 'openstack/osc-snapphase'
openstackdocs_pdf_link = False
openstackdocs_use_storyboard = False
openstackdocs_bug_project = 'osc-snapphase'
openstackdocs_bug_tag = 'doc'
openstackdocs_auto_name = False

# cliff.sphinxext: document the commands as ``openstack ...`` and leave out
# the options that every OSC command has (the formatter options).
autoprogram_cliff_application = 'openstack'
autoprogram_cliff_ignored = [
    '--help', '--format', '--column', '--max-width', '--fit-width',
    '--print-empty', '--prefix', '--noindent', '--quote', '--sort-column',
    '--sort-ascending', '--sort-descending',
]

templates_path = []
source_suffix = '.rst'
master_doc = 'index'

project = 'osc-snapphase'
copyright = '2025, osc-snapphase developers'

exclude_patterns = []

# Keep option names such as --until as typed (no en dashes).
smartquotes = False
pygments_style = 'native'

# -- Options for HTML output -------------------------------------------------

html_theme = 'openstackdocs'
html_static_path = []
htmlhelp_basename = 'osc-snapphasedoc'
