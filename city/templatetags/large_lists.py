"""Django's change-list tags, rendered with the templates that say "more than N" where
city.admin_toolkit.CappedCountPaginator capped the count (admin/large_lists/change_list.html uses them)."""

from django import template
from django.contrib.admin.templatetags.admin_list import admin_actions, pagination, search_form

register = template.Library()

register.inclusion_tag("admin/large_lists/search_form.html", name="capped_search_form")(search_form)
register.inclusion_tag("admin/large_lists/actions.html", takes_context=True, name="capped_admin_actions")(admin_actions)
register.inclusion_tag("admin/large_lists/pagination.html", name="capped_pagination")(pagination)
