foo; SELECT 1); SELECT (2; SELECT 'never ends;
