"""The forecasting model, run in the reporting worker process (router.reporting.workers):
it imports numpy and statsmodels, which the router's own process never loads.

Contacts: MSTL (statsmodels' multiple seasonal-trend decomposition by LOESS) splits the
square root of the counts into a daily and a weekly seasonal component (each slot's
mean over the history's cycles, see SEASONAL_WINDOW) and the rest;
the rest (trend + remainder) is forecast with an exponential smoothing state-space model
(ETS, additive errors: no trend, or a damped additive one, the lower AIC), whose
prediction interval is the forecast's; each seasonal component repeats its last cycle.
The square root makes the noise of a count about as wide at 3 contacts as at 300
(Poisson-like counts are not), so that the prediction interval is narrow at night and
wide at the peak. Back from the root, the mean adds the noise's variance (E[X^2] =
E[X]^2 + Var X) and the bounds are squared (clipped at 0 first). Handle time is forecast
the same way without the root (intervals without a completed contact filled in between
their neighbours).
"""

from __future__ import annotations

import warnings
from statistics import NormalDist

import numpy as np
import numpy.typing as npt
import pandas as pd
from statsmodels.tsa.exponential_smoothing.ets import ETSModel
from statsmodels.tsa.seasonal import MSTL

from router.reporting.forecasting import ForecastQuestion, ForecastValues

Array = npt.NDArray[np.float64]

SEASONAL_WINDOW = 301
"""Cycles the seasonal smoother spans, locally constant (seasonal_deg 0): wider than any
history (91 days), so each slot's seasonal value is a weighted mean of that slot over
the history's cycles. STL's default (7 and 11 cycles, locally linear) extrapolated a
line through four noisy Mondays: on a synthetic history its WAPE was no better than
the seasonal-naive forecast's, and its prediction interval covered half the values
instead of 80%."""

MODEL = (
    "MSTL (daily and weekly seasonality, statsmodels) of the square root of contacts per "
    "interval, the deseasonalised rest forecast by ETS (no trend or damped trend, lower "
    "AIC) with its prediction interval; handle time the same without the root"
)


def forecast_values(question: ForecastQuestion) -> ForecastValues:
    """The horizon's contacts (mean, lower, upper) and AHT, per grid slot."""
    z = NormalDist().inv_cdf(0.5 + question.level / 2)
    periods = (question.per_day, 7 * question.per_day)
    roots = np.sqrt(np.maximum(np.asarray(question.contacts, dtype=np.float64), 0.0))
    mean, noise, error = _seasonal_forecast(roots, periods, question.horizon)
    contacts = np.maximum(mean, 0.0) ** 2 + noise**2
    lower = np.maximum(mean - z * error, 0.0) ** 2
    upper = np.maximum(mean + z * error, 0.0) ** 2
    aht_mean, _, _ = _seasonal_forecast(_filled(question.aht), periods, question.horizon)
    return ForecastValues(
        contacts=tuple(float(v) for v in contacts),
        lower=tuple(float(v) for v in lower),
        upper=tuple(float(v) for v in upper),
        aht=tuple(float(v) for v in np.maximum(aht_mean, 0.0)),
        model=MODEL,
    )


def _filled(values: tuple[float | None, ...]) -> Array:
    """Missing values drawn between their known neighbours (flat past the ends); all
    zeros when none is known."""
    series = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    known = ~np.isnan(series)
    if not known.any():
        return np.zeros(len(series))
    index = np.arange(len(series))
    return np.interp(index, index[known], series[known])


def _seasonal_forecast(
    series: Array, periods: tuple[int, int], horizon: int
) -> tuple[Array, Array, Array]:
    """The forecast of `horizon` values after `series`: its mean, the standard deviation
    of the values' noise around their mean, and that of the forecast's error."""
    if np.ptp(series) == 0:  # nothing to learn (no AHT recorded): the value itself
        flat = np.full(horizon, series[0] if len(series) else 0.0)
        return flat, np.zeros(horizon), np.zeros(horizon)
    with warnings.catch_warnings():
        # statsmodels warns about convergence and frequency-less arrays; neither is news
        # here (the fit's AIC decides, and the grid has no calendar index).
        warnings.simplefilter("ignore")
        decomposition = MSTL(
            series,
            periods=periods,
            windows=[SEASONAL_WINDOW, SEASONAL_WINDOW],
            iterate=1,
            stl_kwargs={
                "seasonal_deg": 0,
                # LOESS evaluated every `jump` points and interpolated in between:
                # at 13 weeks of 15 minutes, 0.24 s instead of 7.8 s, the same values
                # to the WAPE's third decimal on a synthetic history.
                "seasonal_jump": 20,
                "trend_jump": max(1, periods[0] // 2),
                "low_pass_jump": max(1, periods[0] // 2),
            },
        ).fit()
        seasonal = np.asarray(decomposition.seasonal, dtype=np.float64).reshape(len(series), -1)
        rest = series - seasonal.sum(axis=1)
        best = None
        # A pandas Series: ETS's prediction results read the index of the forecast.
        indexed = pd.Series(rest)
        for trend in (None, "add"):
            model = ETSModel(indexed, error="add", trend=trend, damped_trend=trend is not None)
            fitted = model.fit(disp=False)
            if best is None or fitted.aic < best.aic:
                best = fitted
        assert best is not None
        prediction = best.get_prediction(len(rest), len(rest) + horizon - 1)
        mean = np.asarray(prediction.predicted_mean, dtype=np.float64)
        variance = np.asarray(prediction.var_pred_mean, dtype=np.float64)
        sigma = np.sqrt(np.maximum(variance, 0.0))
    # Each seasonal value is a mean over the history's k weekly cycles: it absorbed a
    # share 1/k of the noise in the fit (the residuals the ETS variance is estimated
    # from are narrower by 1 - 1/k), and its own error adds 1/k to the forecast's. So
    # the noise's variance is the ETS one x k / (k - 1), the forecast error's x (k + 1)
    # / (k - 1). Without it an 80% interval held 60% of the actual counts on three
    # weeks of synthetic history.
    cycles = len(series) / periods[1]
    noise = sigma * np.sqrt(cycles / (cycles - 1))
    error = sigma * np.sqrt((cycles + 1) / (cycles - 1))
    steps = np.arange(horizon)
    for column, period in enumerate(periods[: seasonal.shape[1]]):
        last_cycle = seasonal[len(series) - period :, column]
        mean = mean + last_cycle[steps % period]
    return mean, noise, error
