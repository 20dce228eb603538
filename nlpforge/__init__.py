"""nlpforge: one YAML recipe from raw domain text to a served, evaluated language model."""

__version__ = "0.1.0"
