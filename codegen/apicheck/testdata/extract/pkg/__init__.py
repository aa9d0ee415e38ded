from .mod import Widget
