"""Names the catalogue, the command line and the site share without loading the science
(numpy, numba, astropy): verdicts and candidate kinds."""
PLANET = "planet candidate"
FALSE_POSITIVE = "false positive"
KINDS = ("periodic", "single")
