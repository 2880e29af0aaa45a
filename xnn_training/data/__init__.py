"""Data sets: one interface over toybirds (generated), CUB-200-2011 and ImageFolder trees."""
