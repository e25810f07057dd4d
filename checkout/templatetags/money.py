from django import template

from payments.currencies import format_money

register = template.Library()


@register.simple_tag
def money(amount, currency):
    return format_money(int(amount), currency)
