"""What ``lgn bench`` measures, shipped with the package so that it runs from an installed wheel.

- :mod:`lgn.bench.baseline`: the straightforward restatement of the method, the speed baseline;
- :mod:`lgn.bench.plain`: a hand-written conv net with a trained model's filters, the inference baseline;
- :mod:`lgn.bench.measure`: the agreement check, the alternating timings, peak memory and the profile.

It builds models (:mod:`lgn.models`) and uses the training memory settings
(:mod:`lgn.memory`), so it sits beside :mod:`lgn.reproduce`, below the CLI.
Importing it starts nothing; only :func:`lgn.bench.measure.run_bench` times.
"""
