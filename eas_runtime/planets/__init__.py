"""From a light curve to vetted planet candidates of one star.

:mod:`.search` finds single transit events and, with them masked, every periodic signal in
turn (search, mask, search again); :mod:`.vetting` measures each candidate against the tests of
the Kepler pipeline's data validation and Robovetter and gives a verdict with its reasons;
:mod:`.table` writes and reads the candidates as a table (ECSV, CSV, VOTable).

Units everywhere: times, periods and durations in days, depths in ppm of the normalised flux,
signal-to-noise ratios and sigmas dimensionless, stellar densities in solar units.
"""
