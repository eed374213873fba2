"""Turn the real data sets (Online Retail, Chinese reviews, English short texts) into
events of the public schema, plus seeded synthetic browsing (no real clickstream exists).
"""
